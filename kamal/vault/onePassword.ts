/**
 * 1Password through its CLI (`op`), as Kamal's `one_password` adapter (`--adapter
 * 1password`): signed in with `op signin --force --raw` unless `op account get` says so; each
 * item read once with `op item get` for all its fields (`label=section.field`, the password
 * field when none is named); every field of `--from vault/item` when no name is given. Keys
 * are the fields' references without `op://` and without a trailing `/password`.
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";

interface OpField {
  reference: string;
  value: string;
}

export class OnePassword extends Vault {
  protected readonly installCheck = { argv: ["op", "--version"], missing: "1Password CLI is not installed" };

  protected login(account: string | undefined): string | undefined {
    if (this.cli.run(["op", "account", "get", "--account", account!], { quiet: true }).ok) return undefined;
    const r = this.cli.run(["op", "signin", "--account", account!, "--force", "--raw"]);
    if (!r.ok) throw new VaultError("Failed to login to 1Password");
    return r.stdout.trim() || undefined;
  }

  protected fetchSecrets(secrets: readonly string[], o: FetchOptions & { session?: string }): Record<string, string> {
    const results: Record<string, string> = {};
    if (!secrets.length) {
      const [vault, item] = (o.from ?? "").replace(/^op:\/\//, "").split("/");
      const all = parseJson<{ fields?: OpField[] }>(this.itemGet(vault, item, undefined, o), "1Password");
      return fieldsMap(all.fields ?? []);
    }
    for (const [vault, items] of vaultsItemsFields(prefixed(secrets, o.from))) {
      for (const [item, fields] of items) {
        const read = parseJson<OpField | OpField[]>(this.itemGet(vault, item, fields, o), "1Password");
        // One field comes back as an object, several as a list.
        Object.assign(results, fieldsMap(fields.length === 1 && !Array.isArray(read) ? [read] : (read as OpField[])));
      }
    }
    return results;
  }

  private itemGet(vault: string, item: string, fields: string[] | undefined, o: FetchOptions & { session?: string }): string {
    const argv = ["op", "item", "get", item, "--vault", vault, "--format", "json", "--account", o.account!, ...(o.session ? ["--session", o.session] : [])];
    if (fields?.length) argv.push("--fields", fields.map((f) => `label=${f}`).join(","));
    const r = this.cli.run(argv);
    if (!r.ok) throw new VaultError(`Could not read ${fields?.length ? `${fields.join(", ")} ` : ""}from ${item} in the ${vault} 1Password vault`);
    return r.stdout;
  }
}

/** "vault/item/section/field" (op:// optional) by vault, then item: the fields asked, as
 * op's labels ("section.field"), "password" when none is named. */
function vaultsItemsFields(secrets: string[]): Map<string, Map<string, string[]>> {
  const vaults = new Map<string, Map<string, string[]>>();
  for (const secret of secrets) {
    const [vault, item, ...fields] = secret.replace(/^op:\/\//, "").split("/");
    const items = vaults.get(vault) ?? new Map<string, string[]>();
    vaults.set(vault, items);
    items.set(item, [...(items.get(item) ?? []), fields.length ? fields.join(".") : "password"]);
  }
  return vaults;
}

/** Each field by its reference, without "op://" and without a trailing "/password". */
function fieldsMap(fields: OpField[]): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [f.reference.replace(/^op:\/\//, "").replace(/\/password$/, ""), f.value]));
}

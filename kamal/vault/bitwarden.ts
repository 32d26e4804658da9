/**
 * Bitwarden through its CLI (`bw`), as Kamal's `bitwarden` adapter: `bw login ACCOUNT` when
 * unauthenticated, `bw unlock --raw` when locked (the session then passed as BW_SESSION),
 * `bw sync`; each item read once (`bw get item NAME`): the fields named ("item/field"), else
 * the login's password, else every custom field.
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";

interface BwItem {
  login?: { password?: string | null } | null;
  fields?: { name: string; value: string }[] | null;
}

export class Bitwarden extends Vault {
  protected readonly installCheck = { argv: ["bw", "--version"], missing: "Bitwarden CLI is not installed" };

  protected login(account: string | undefined): string | undefined {
    let status = this.status();
    if (status === "unauthenticated") {
      this.bw(["login", account!]);
      status = this.status();
    }
    let session: string | undefined;
    if (status === "locked") {
      session = this.bw(["unlock", "--raw"]).stdout.trim() || undefined;
      status = this.status(session);
    }
    if (status !== "unlocked") throw new VaultError("Failed to login to and unlock Bitwarden");
    if (!this.bw(["sync"], session).ok) throw new VaultError("Failed to sync Bitwarden");
    return session;
  }

  protected fetchSecrets(secrets: readonly string[], o: FetchOptions & { session?: string }): Record<string, string> {
    const results: Record<string, string> = {};
    for (const [item, fields] of itemsFields(prefixed(secrets, o.from))) {
      const r = this.bw(["get", "item", item], o.session);
      if (!r.ok) throw new VaultError(`Could not read ${item} from Bitwarden`);
      const json = parseJson<BwItem>(r.stdout.trim(), "Bitwarden");
      if (fields.some((f) => f !== undefined)) Object.assign(results, fromFields(fields, item, json));
      else if (json.login?.password) results[item] = json.login.password;
      else if (json.fields?.length) Object.assign(results, fromFields(json.fields.map((f) => f.name), item, json));
      else throw new VaultError(`Item ${item} is not a login type item and no fields were specified`);
    }
    return results;
  }

  private status(session?: string): string | undefined {
    return parseJson<{ status?: string }>(this.bw(["status"], session).stdout.trim(), "Bitwarden").status;
  }

  private bw(args: string[], session?: string) {
    return this.cli.run(["bw", ...args], session ? { env: { BW_SESSION: session } } : {});
  }
}

/** "item/field" by item: the fields named (undefined for an item named alone). */
function itemsFields(secrets: string[]): Map<string, (string | undefined)[]> {
  const items = new Map<string, (string | undefined)[]>();
  for (const s of secrets) {
    const [item, field] = s.split("/");
    items.set(item, [...(items.get(item) ?? []), field]);
  }
  return items;
}

function fromFields(fields: (string | undefined)[], item: string, json: BwItem): Record<string, string> {
  return Object.fromEntries(
    fields.map((field) => {
      const found = json.fields?.find((f) => f.name === field);
      if (!found) throw new VaultError(`Could not find field ${field ?? ""} in item ${item} in Bitwarden`);
      return [`${item}/${field}`, found.value];
    }),
  );
}

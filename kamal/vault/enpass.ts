/**
 * Enpass through enpass-cli (`enpass-cli -json -vault PATH show TITLE…`), as Kamal's `enpass`
 * adapter: Enpass is offline, so no `--account` and no sign-in; `--from` is the vault's
 * directory. A name is an item title (every password field of the item, each keyed
 * "title/label", or "title" for an unlabelled one) or "title/label" (that field only).
 */
import { parseJson, Vault, VaultError, type FetchOptions } from "./adapter";

interface Field {
  title?: string;
  label?: string;
  password?: string;
}

export class Enpass extends Vault {
  override readonly requiresAccount = false;

  protected readonly installCheck = { argv: ["enpass-cli", "version"], missing: "Enpass CLI is not installed" };


  protected fetchSecrets(secrets: readonly string[], { from }: FetchOptions): Record<string, string> {
    if (from === undefined) throw new VaultError("Missing required option '--from'");
    const titles = [...new Set(secrets.map(itemTitle))];
    // Like Kamal, the exit status is not checked: the output is the answer.
    const r = this.cli.run(["enpass-cli", "-json", "-vault", from, "show", ...titles]);
    const fields = parseJson<Field[]>(r.stdout.trim(), "Enpass");

    const results = new Map<string, string>();
    for (const { title, label, password } of fields) {
      if (typeof title !== "string" || typeof password !== "string" || isBlank(password)) continue;
      const key = [title, label].filter((part) => typeof part === "string" && part !== "").join("/");
      if (!secrets.includes(title) && !secrets.includes(key)) continue;
      if (results.has(key)) throw new VaultError(`${key} is present more than once`);
      results.set(key, password);
    }
    return Object.fromEntries(results);
  }
}

/** The item a name is in: "FooBar/DB_PASSWORD" is in "FooBar", "FooBar" is an item itself
 * (Ruby's `rpartition("/")`: everything before the last "/", when there is anything). */
function itemTitle(secret: string): string {
  const slash = secret.lastIndexOf("/");
  return slash > 0 ? secret.slice(0, slash) : secret.slice(slash + 1);
}

/** ActiveSupport's `blank?` for a string: nothing but whitespace. */
function isBlank(s: string): boolean {
  return /^\p{White_Space}*$/u.test(s);
}

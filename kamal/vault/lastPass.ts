/**
 * LastPass through its CLI (`lpass`), as Kamal's `last_pass` adapter: `lpass login ACCOUNT`
 * unless `lpass status` says that account is logged in; every name read by one `lpass show
 * --json`, keyed by its full name; a name LastPass did not return is an error.
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";
import { inspectList } from "./rubyText";

export class LastPass extends Vault {
  protected readonly installCheck = { argv: ["lpass", "--version"], missing: "LastPass CLI is not installed" };

  protected login(account: string | undefined): undefined {
    if (this.cli.run(["lpass", "status", "--color", "never"]).stdout.trim() === `Logged in as ${account}.`) return undefined;
    if (!this.cli.run(["lpass", "login", account!]).ok) throw new VaultError("Failed to login to LastPass");
    return undefined;
  }

  protected fetchSecrets(secrets: readonly string[], { from }: FetchOptions): Record<string, string> {
    const names = prefixed(secrets, from);
    const r = this.cli.run(["lpass", "show", ...names, "--json"]);
    if (!r.ok) throw new VaultError(`Could not read ${inspectList(names)} from LastPass`);
    const results: Record<string, string> = {};
    for (const item of parseJson<{ fullname: string; password: string }[]>(r.stdout, "LastPass")) results[item.fullname] = item.password;
    const missing = names.filter((n) => !(n in results));
    if (missing.length) throw new VaultError(`Could not find ${missing.join(", ")} in LastPass`);
    return results;
  }
}

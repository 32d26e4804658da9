/**
 * Bitwarden Secrets Manager through its CLI (`bws`, its access token from the environment),
 * as Kamal's `bitwarden_secrets_manager` adapter (`--adapter bitwarden-sm`): no account; the
 * token checked with `bws project list`; secrets by id (`bws secret get ID`), or "all" /
 * "PROJECT/all" for a list (`bws secret list [PROJECT]`); keyed by each secret's key.
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";

/** A secret as `bws secret get|list` prints it (the fields read here). */
type BwsSecret = { key: string; value: string };

export class BitwardenSecretsManager extends Vault {
  override readonly requiresAccount = false;

  protected readonly installCheck = { argv: ["bws", "--version"], missing: "Bitwarden Secrets Manager CLI is not installed" };

  protected login(): undefined {
    if (!this.cli.run(["bws", "project", "list"]).ok) throw new VaultError("Could not authenticate to Bitwarden Secrets Manager. Did you set a valid access token?");
    return undefined;
  }

  protected fetchSecrets(secrets: readonly string[], { from }: FetchOptions): Record<string, string> {
    if (!secrets.length) throw new VaultError("You must specify what to retrieve from Bitwarden Secrets Manager");
    const ids = prefixed(secrets, from);
    const results: Record<string, string> = {};
    const list = listCommand(ids);
    if (list) {
      const r = this.cli.run(["bws", ...list]);
      if (!r.ok) throw new VaultError("Could not read secrets from Bitwarden Secrets Manager");
      for (const s of parseJson<BwsSecret[]>(r.stdout, "Bitwarden Secrets Manager")) results[s.key] = s.value;
      return results;
    }
    for (const id of ids) {
      const r = this.cli.run(["bws", "secret", "get", id]);
      if (!r.ok) throw new VaultError(`Could not read ${id} from Bitwarden Secrets Manager`);
      const s = parseJson<BwsSecret>(r.stdout, "Bitwarden Secrets Manager");
      results[s.key] = s.value;
    }
    return results;
  }
}

/** "all" lists every secret, "PROJECT/all" a project's (one name only); else undefined. */
function listCommand(ids: string[]): string[] | undefined {
  if (ids.length !== 1) return undefined;
  if (ids[0] === "all") return ["secret", "list"];
  if (ids[0].endsWith("/all")) return ["secret", "list", ids[0].split("/all")[0]];
  return undefined;
}

/**
 * Google Cloud Secret Manager through the gcloud CLI (`gcloud secrets versions access`), as
 * Kamal's `gcp_secret_manager` adapter (alias `gcp`).
 *
 * A name is `[project/]secret[/version]` ("default" is gcloud's configured project, the
 * version defaults to "latest"), `--from` being a project in front of every name; results
 * are keyed "project/secret". `--account` is `USER[|DELEGATION_CHAIN]`: USER an email or
 * "default" (gcloud's active account), the chain comma-separated service accounts to
 * impersonate ("default|sa@example.com", "me@example.com|sa1@example.com,sa2@example.com").
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";
import { splitPath } from "./rubyText";

interface AccessedVersion {
  payload?: { data?: string };
}

export class GcpSecretManager extends Vault {
  protected readonly installCheck = { argv: ["gcloud", "--version"], missing: "gcloud CLI is not installed" };

  protected login(): undefined {
    if (!this.loggedIn()) {
      this.cli.run(["gcloud", "auth", "login"]);
      if (!this.loggedIn()) throw new VaultError("could not login to gcloud");
    }
    return undefined;
  }

  protected fetchSecrets(secrets: readonly string[], { from, account }: FetchOptions): Record<string, string> {
    const [user, serviceAccount] = splitAccount(account ?? "");
    const results = new Map<string, string>();
    for (const { project, name, version } of withMetadata(prefixed(secrets, from))) {
      const itemName = `${project}/${name}`;
      const argv = ["gcloud", "secrets", "versions", "access", version, `--secret=${name}`];
      if (project !== "default") argv.push(`--project=${project}`);
      if (user !== "default") argv.push(`--account=${user}`);
      if (serviceAccount !== undefined) argv.push(`--impersonate-service-account=${serviceAccount}`);
      argv.push("--format=json");

      const r = this.cli.run(argv);
      const data = r.ok ? parseJson<AccessedVersion | null>(r.stdout, "Google Secret Manager")?.payload?.data : undefined;
      if (typeof data !== "string") throw new VaultError(`Could not read ${itemName} from Google Secret Manager`);
      results.set(itemName, Buffer.from(data, "base64").toString("utf8"));
    }
    return Object.fromEntries(results);
  }

  /** `gcloud auth list` lists at least one credentialed account. */
  private loggedIn(): boolean {
    const accounts = parseJson<unknown>(this.cli.run(["gcloud", "auth", "list", "--format=json"]).stdout, "gcloud auth list");
    if (Array.isArray(accounts)) return accounts.some((a) => a !== null && a !== false);
    return accounts !== null && typeof accounts === "object" && Object.keys(accounts).length > 0;
  }
}

/** "user|chain" → [user, chain]; only the first "|" splits (Ruby's `split("|", 2)`). */
function splitAccount(account: string): [string, string | undefined] {
  const bar = account.indexOf("|");
  return bar < 0 ? [account, undefined] : [account.slice(0, bar), account.slice(bar + 1)];
}

/** Each distinct name as project, secret and version: "s", "default/s" and "default/s/latest"
 * are the same secret; parts after the version are ignored. */
function withMetadata(paths: readonly string[]): { project: string; name: string; version: string }[] {
  const byPath = new Map<string, { project: string; name: string; version: string }>();
  for (const path of paths) {
    const parts = splitPath(path);
    if (parts.length === 1) parts.unshift("default");
    const [project = "", name = "", version = "latest"] = parts;
    byPath.set(path, { project, name, version });
  }
  return [...byPath.values()];
}

/**
 * Doppler through the Doppler CLI (`doppler secrets get … --json`), as Kamal's `doppler`
 * adapter: no `--account`; `--from project/config` (or the first name's leading
 * "project/config/") picks the project and config, unless DOPPLER_TOKEN is a service token
 * ("dp.st…", already bound to one config). Results are keyed by Doppler's secret names.
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";
import { inspectList, splitPath } from "./rubyText";

type DopplerSecrets = Record<string, { computed: string }>;

export class Doppler extends Vault {
  override readonly requiresAccount = false;

  protected readonly installCheck = { argv: ["doppler", "--version"], missing: "Doppler CLI is not installed" };

  protected login(): undefined {
    if (this.cli.run(["doppler", "me", "--json"], { quiet: true }).ok) return undefined;
    if (!this.cli.run(["doppler", "login", "-y"]).ok) throw new VaultError("Failed to login to Doppler");
    return undefined;
  }

  protected fetchSecrets(secrets: readonly string[], { from }: FetchOptions): Record<string, string> {
    const paths = prefixed(secrets, from);
    const names = paths.map((p) => splitPath(p).at(-1) ?? "");
    const r = this.cli.run(["doppler", "secrets", "get", ...names, "--json", ...this.projectAndConfig(paths)]);
    if (!r.ok) throw new VaultError(`Could not read ${inspectList(paths)} from Doppler`);
    const items = parseJson<DopplerSecrets>(r.stdout, "Doppler");
    return Object.fromEntries(Object.entries(items).map(([name, item]) => [name, item?.computed]));
  }

  /** `-p PROJECT -c CONFIG` from the first name, or nothing with a service token. */
  private projectAndConfig(paths: readonly string[]): string[] {
    if (this.cli.env.DOPPLER_TOKEN?.startsWith("dp.st")) return [];
    const [project, config] = paths.length ? splitPath(paths[0]) : [];
    if (project === undefined || config === undefined) {
      throw new VaultError("Missing project or config from '--from=project/config' option");
    }
    return ["-p", project, "-c", config];
  }
}

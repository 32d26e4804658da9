/**
 * A vault adapter: how `kamal secrets fetch --adapter NAME` reads secrets through a vendor's
 * own CLI (1Password's `op`, Bitwarden's `bw`, the AWS CLI…), program-side. Each adapter
 * calls the same commands, with the same sign-in checks, and returns the same JSON map as
 * Kamal 2.12's adapter of that name: secret name (as the vendor's path) to value.
 */
import { spawnSync } from "node:child_process";

export class VaultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VaultError";
  }
}

/** What a vendor command returned: whether it exited 0, and its stdout. */
export interface CliResult {
  ok: boolean;
  stdout: string;
}

/** Runs a vendor CLI by argv (never through a shell). Like Kamal's backticks, stdin and
 * stderr are the user's terminal (a sign-in may prompt) and stdout is captured; `quiet`
 * discards stderr (Kamal's `2> /dev/null`); `env` adds variables (Bitwarden's BW_SESSION). */
export interface VendorCli {
  run(argv: readonly string[], opts?: { quiet?: boolean; env?: Record<string, string> }): CliResult;
  /** The environment the CLIs run with (some adapters read a token from it). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The machine's vendor CLIs, found on PATH. */
export function vendorCli(env: Record<string, string | undefined> = process.env, cwd?: string): VendorCli {
  return {
    env,
    run(argv, opts = {}) {
      const r = spawnSync(argv[0], argv.slice(1), {
        cwd,
        env: { ...env, ...(opts.env ?? {}) } as NodeJS.ProcessEnv,
        encoding: "utf8",
        stdio: ["inherit", "pipe", opts.quiet ? "ignore" : "inherit"],
        maxBuffer: 64 * 1024 * 1024,
      });
      return { ok: r.status === 0, stdout: r.stdout ?? "" };
    },
  };
}

export interface FetchOptions {
  /** `--account`: the account identifier or user name (or the AWS profile, the GCP user…). */
  account?: string;
  /** `--from`: a vault, folder, project or item the names are relative to. */
  from?: string;
}

/**
 * An adapter, as Kamal's base adapter runs one: the account checked when the vendor needs
 * one, the CLI checked, a sign-in when not signed in, then the fetch.
 */
export abstract class Vault {
  constructor(protected readonly cli: VendorCli) {}

  /** Whether `--account` is required (most vendors). */
  readonly requiresAccount: boolean = true;
  /** The vendor CLI's version command (exit 0: installed) and Kamal's message without it;
   * none for an adapter without a CLI. */
  protected abstract readonly installCheck: { argv: readonly string[]; missing: string } | undefined;

  fetch(secrets: readonly string[], options: FetchOptions = {}): Record<string, string> {
    if (this.requiresAccount && !options.account) throw new VaultError("Missing required option '--account'");
    if (this.installCheck && !this.cli.run(this.installCheck.argv, { quiet: true }).ok) throw new VaultError(this.installCheck.missing);
    const session = this.login(options.account);
    return this.fetchSecrets(secrets, { ...options, session });
  }

  /** Signs in when needed; returns a session token for the fetch when the vendor uses one.
   * None by default (the CLI's own credentials). */
  protected login(_account: string | undefined): string | undefined {
    return undefined;
  }

  protected abstract fetchSecrets(secrets: readonly string[], o: FetchOptions & { session?: string }): Record<string, string>;
}

/** Each name with `--from` in front ("from/name"), as Kamal prefixes them. */
export function prefixed(secrets: readonly string[], from: string | undefined): string[] {
  return secrets.map((s) => (from ? `${from}/${s}` : s));
}

/** JSON from a vendor command, or a VaultError saying what could not be read. */
export function parseJson<T = unknown>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new VaultError(`${what}: the CLI did not return JSON`);
  }
}

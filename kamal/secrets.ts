/**
 * Kamal's secrets files, read as Kamal reads them, program-side.
 *
 * - Kamal 2: `<secrets_path>-common`, then `<secrets_path>` (or `<secrets_path>.<destination>`
 *   with a destination; `secrets_path` defaults to `.kamal/secrets`); a later file wins.
 * - Kamal 1: `.env.<destination>` over `.env` (dotenv's first-loaded-wins), or `.env`.
 *
 * Each file is dotenv as Kamal 2 reads it (./dotenv.ts); `$(kamal secrets …)` runs Kamal's
 * secrets commands in process (./vault), any other `$(…)` runs with `sh` in the app root.
 * Lazy: a key's value, and any command in it, is evaluated only when that secret is used,
 * and once. Errors name the file, line and key, never a value or a command's output.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { DotenvFile, type DotenvEntry } from "./dotenv";
import { secretsCommand } from "./vault/commands";
import { vendorCli, type VendorCli } from "./vault/adapter";
import { shellsplit } from "./vault/shellwords";

export class SecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretsError";
  }
}

export interface SecretsFilesOptions {
  appRoot: string;
  /** Kamal major version: which files are read. */
  kamal: 1 | 2;
  destination?: string;
  /** Kamal 2's `secrets_path` (default `.kamal/secrets`), relative to the app root. */
  secretsPath?: string;
  /** Explicit files instead (relative to the app root); each must exist. */
  files?: string[];
  /** The environment `$NAME` and commands see (default process.env). */
  env?: Record<string, string | undefined>;
}

export class SecretsFiles {
  /** The files read, in the order they were found (relative to the app root). */
  readonly files: string[];
  /** The candidates looked for (for messages). */
  readonly candidates: string[];
  /** The files in the order they apply: a key of a later one wins. */
  private readonly loaded: DotenvFile[] = [];
  private readonly env: Record<string, string | undefined>;
  private readonly vendors: VendorCli;

  constructor(private readonly opts: SecretsFilesOptions) {
    this.env = opts.env ?? process.env;
    this.vendors = vendorCli(this.env, opts.appRoot);
    this.candidates = opts.files ?? defaultFiles(opts);
    this.files = [];
    // Kamal 2: later files win. Kamal 1 (dotenv load): the first file that sets a key wins,
    // so the files are applied in reverse.
    const ordered = opts.files || opts.kamal === 2 ? this.candidates : [...this.candidates].reverse();
    for (const f of ordered) {
      const file = path.resolve(opts.appRoot, f);
      if (!existsSync(file)) {
        if (opts.files) throw new SecretsError(`secrets file ${f} does not exist`);
        continue;
      }
      this.files.push(f);
      try {
        this.loaded.push(new DotenvFile(readFileSync(file, "utf8"), f, this.env, (command, entry) => this.run(entry, command)));
      } catch (e) {
        throw new SecretsError((e as Error).message);
      }
    }
  }

  /** Every key the files set. */
  keys(): string[] {
    return [...new Set(this.loaded.flatMap((f) => f.keys()))];
  }

  has(key: string): boolean {
    return this.loaded.some((f) => f.has(key));
  }

  /** The value of a secret, evaluated on first use. */
  get(key: string): string {
    const file = this.loaded.filter((f) => f.has(key)).pop();
    if (!file) throw new SecretsError(`secret ${key} is not in ${this.files.length ? this.files.join(", ") : `any secrets file (looked for ${this.candidates.join(", ")})`}`);
    try {
      return file.get(key)!;
    } catch (e) {
      throw e instanceof SecretsError ? e : new SecretsError((e as Error).message);
    }
  }

  /** Every secret and its value (`kamal secrets print`): every command in the files runs. */
  all(): Record<string, string> {
    return Object.fromEntries(this.keys().map((k) => [k, this.get(k)]));
  }

  private run(e: DotenvEntry, command: string): string {
    const at = `${e.file}:${e.line}: ${e.key}`;
    // Kamal runs its own secrets commands in process, with --inline.
    if (/^\s*kamal\s*secrets\s+/.test(command)) {
      const sub = /^\s*kamal\s*secrets\s+(\S*)/.exec(command)![1];
      try {
        return secretsCommand([...shellsplit(command).slice(2), "--inline"], this.vendors).replace(/\r?\n$/, "");
      } catch (err) {
        throw new SecretsError(`${at}: kamal secrets ${sub}: ${(err as Error).message}`);
      }
    }
    try {
      return execFileSync("sh", ["-c", command], {
        cwd: this.opts.appRoot,
        env: this.env as NodeJS.ProcessEnv,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
        maxBuffer: 16 * 1024 * 1024,
      }).replace(/\r?\n$/, "");
    } catch (err) {
      const x = err as { status?: number | null; stdout?: string };
      // Like Ruby's backticks, output counts even from a failed command. No output from a
      // failed command is an error here (Kamal would deploy an empty secret).
      const out = String(x.stdout ?? "").replace(/\r?\n$/, "");
      if (out) return out;
      const program = command.trim().split(/\s+/)[0];
      const why = x.status === 127 ? `${program} is not installed here` : `exited ${x.status ?? "on a signal"} with no output`;
      throw new SecretsError(`${at}: the command $(${program} …) ${why}; set ${e.key} with \`pulumi config set --secret ${e.key} …\` instead, or fix the command`);
    }
  }
}

function defaultFiles(o: SecretsFilesOptions): string[] {
  if (o.kamal === 1) return o.destination ? [`.env.${o.destination}`, ".env"] : [".env"];
  const base = o.secretsPath ?? ".kamal/secrets";
  return [`${base}-common`, o.destination ? `${base}.${o.destination}` : base];
}

/**
 * Kamal's secrets files, read as Kamal reads them, program-side.
 *
 * - Kamal 2: `<secrets_path>-common`, then `<secrets_path>` (or `<secrets_path>.<destination>`
 *   with a destination; `secrets_path` defaults to `.kamal/secrets`); a later file wins.
 * - Kamal 1: `.env.<destination>` over `.env` (dotenv's first-loaded-wins), or `.env`.
 *
 * Dotenv syntax: `KEY=value`, `export `, single quotes (literal), double quotes (escapes and
 * substitution), `#` comments, `$NAME`/`${NAME}` (an earlier key of the same file, else the
 * environment), and command substitution `$(…)` run by `sh` in the app root, as Kamal runs it
 * (after variable substitution; `\$(` is literal; `kamal secrets …` gets `--inline`).
 *
 * Lazy: a key's value, and any command in it, is evaluated only when that secret is used,
 * and once. Errors name the file, line and key, never a value or a command's output.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export class SecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretsError";
  }
}

interface Entry {
  key: string;
  file: string;
  line: number;
  /** The value as written, quotes removed; substituted unless single-quoted. */
  raw: string;
  substitute: boolean;
}

/** One dotenv file's entries, in order (a later line for a key replaces an earlier one). */
export function parseSecretsFile(text: string, file: string): Entry[] {
  const out: Entry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*[=:]\s*(.*)$/);
    if (!m) throw new SecretsError(`${file}:${i + 1}: expected KEY=value`);
    const [, key, rest] = m;
    if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) throw new SecretsError(`${file}:${i + 1}: ${key}: unterminated single quote`);
      out.push({ key, file, line: i + 1, raw: rest.slice(1, end), substitute: false });
    } else if (rest.startsWith('"')) {
      // A double-quoted value may span lines.
      let text = rest.slice(1);
      let j = i;
      let value = "";
      for (;;) {
        let k = 0;
        let closed = false;
        for (; k < text.length; k++) {
          if (text[k] === "\\" && k + 1 < text.length) {
            const n = text[++k];
            value += n === "n" ? "\n" : n === "$" ? "\\$" : n;
          } else if (text[k] === '"') {
            closed = true;
            break;
          } else value += text[k];
        }
        if (closed) break;
        if (++j >= lines.length) throw new SecretsError(`${file}:${i + 1}: ${key}: unterminated double quote`);
        value += "\n";
        text = lines[j];
      }
      out.push({ key, file, line: i + 1, raw: value, substitute: true });
      i = j;
    } else {
      out.push({ key, file, line: i + 1, raw: rest.replace(/\s+#.*$/, "").trim(), substitute: true });
    }
  }
  return out;
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
  private readonly entries = new Map<string, Entry>();
  private readonly byFile = new Map<string, Entry[]>();
  private readonly values = new Map<string, string>();
  private readonly env: Record<string, string | undefined>;

  constructor(private readonly opts: SecretsFilesOptions) {
    this.env = opts.env ?? process.env;
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
      const entries = parseSecretsFile(readFileSync(file, "utf8"), f);
      this.byFile.set(f, entries);
      for (const e of entries) this.entries.set(e.key, e);
    }
  }

  /** Every key the files set. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The value of a secret, evaluated on first use. */
  get(key: string): string {
    const cached = this.values.get(key);
    if (cached !== undefined) return cached;
    const entry = this.entries.get(key);
    if (!entry) throw new SecretsError(`secret ${key} is not in ${this.files.length ? this.files.join(", ") : `any secrets file (looked for ${this.candidates.join(", ")})`}`);
    const value = this.evaluate(entry, new Set());
    this.values.set(key, value);
    return value;
  }

  private evaluate(e: Entry, seen: Set<Entry>): string {
    if (!e.substitute) return e.raw;
    if (seen.has(e)) throw new SecretsError(`${e.file}:${e.line}: ${e.key} refers to itself`);
    seen.add(e);
    const earlier = (this.byFile.get(e.file) ?? []).filter((x) => x.line < e.line);
    const lookup = (name: string): string => {
      const prior = earlier.filter((x) => x.key === name).pop();
      if (prior) return this.evaluate(prior, seen);
      return this.env[name] ?? "";
    };
    // Variables first (not `$(`), then commands, as Kamal's dotenv does.
    const withVars = e.raw.replace(/(\\)?\$(?!\()(\{)?([A-Za-z0-9_]+)(\})?/g, (m, escaped: string | undefined, open: string | undefined, name: string, close: string | undefined) => {
      if (escaped) return m.slice(1);
      if (open && !close) return m;
      return lookup(name);
    });
    return substituteCommands(withVars, (command) => this.run(e, command));
  }

  private run(e: Entry, command: string): string {
    let cmd = command;
    if (/^\s*kamal\s+secrets\s+/.test(cmd)) cmd = `${cmd} --inline`;
    try {
      return execFileSync("sh", ["-c", cmd], {
        cwd: this.opts.appRoot,
        env: this.env as NodeJS.ProcessEnv,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
        maxBuffer: 16 * 1024 * 1024,
      }).replace(/\r?\n$/, "");
    } catch (err) {
      const x = err as { status?: number | null; stdout?: string };
      // Like Ruby's backticks, output counts even from a failed command; no output is an error.
      const out = String(x.stdout ?? "").replace(/\r?\n$/, "");
      if (out) return out;
      const program = command.trim().split(/\s+/).slice(0, /^kamal$/.test(command.trim().split(/\s+/)[0]) ? 3 : 1).join(" ");
      const why = x.status === 127 ? `${program} is not installed here` : `exited ${x.status ?? "on a signal"} with no output`;
      throw new SecretsError(`${e.file}:${e.line}: ${e.key}: the command $(${program} …) ${why}; set ${e.key} with \`pulumi config set --secret ${e.key} …\` instead, or fix the command`);
    }
  }
}

function defaultFiles(o: SecretsFilesOptions): string[] {
  if (o.kamal === 1) return o.destination ? [`.env.${o.destination}`, ".env"] : [".env"];
  const base = o.secretsPath ?? ".kamal/secrets";
  return [`${base}-common`, o.destination ? `${base}.${o.destination}` : base];
}

/** Replaces each unescaped `$(…)` (parentheses nest) by `run(command)`. */
export function substituteCommands(value: string, run: (command: string) => string): string {
  let out = "";
  for (let i = 0; i < value.length; ) {
    if (value[i] === "\\" && value.startsWith("$(", i + 1)) {
      out += "$(";
      i += 3;
      continue;
    }
    if (value.startsWith("$(", i)) {
      let depth = 0;
      let j = i + 1;
      for (; j < value.length; j++) {
        if (value[j] === "\\") {
          j++;
          continue;
        }
        if (value[j] === "(") depth++;
        else if (value[j] === ")" && --depth === 0) break;
      }
      if (j >= value.length) {
        out += value.slice(i);
        break;
      }
      out += run(value.slice(i + 2, j));
      i = j + 1;
      continue;
    }
    out += value[i++];
  }
  return out;
}

/**
 * Dotenv files as Kamal 2 reads its secrets (Ruby's dotenv 3.2, which Kamal 2.12 locks, with
 * Kamal's own command substitution), evaluated lazily: a key's value, and every command it
 * runs, is computed only when something asks for it, and once.
 *
 * What a value goes through, in dotenv's order:
 * - a line is `[export ]KEY=value` or `KEY: value`; an unquoted value ends at `#`;
 * - single quotes: the text as it is, nothing else;
 * - double quotes: may span lines; `\n` stays a backslash and an n (dotenv 3's default);
 * - otherwise: each `\x` becomes `x` (but `\$` stays), then each `$(command)` is replaced by
 *   its output (its `$NAME`s substituted first; `\$(` is literal; `kamal secrets …` runs in
 *   process with `--inline`, as Kamal does), then each `$NAME`/`${NAME}` by an earlier key
 *   of the same file, else the environment, else "" (`\$NAME` is literal).
 */

/** A key's line in a file, as written. */
export interface DotenvEntry {
  key: string;
  file: string;
  line: number;
  /** The value as written (quotes included), or undefined for a bare `KEY`. */
  written?: string;
}

export class DotenvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DotenvError";
  }
}

// dotenv 3.2's LINE (Ruby /x), as a JavaScript multiline regex.
const LINE = /^\s*(?<export>export\s+)?(?<key>[\w.]+)(?:(?:\s*=\s*?|:\s+?)(?<value>\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^#\n]+)?)?\s*(?:#.*)?$/dgm;

/** The entries of one file, in order (a later line for a key replaces an earlier one). */
export function parseDotenv(text: string, file: string): DotenvEntry[] {
  const normalized = text.replace(/\r\n?/g, "\n");
  const entries: DotenvEntry[] = [];
  const seen = new Set<string>();
  for (const m of normalized.matchAll(LINE)) {
    const { key, value, export: exported } = m.groups as { key: string; value?: string; export?: string };
    const line = normalized.slice(0, m.indices!.groups!.key![0]).split("\n").length;
    if (exported && value === undefined) {
      // `export KEY` re-exports an earlier key; dotenv refuses one never set.
      if (!seen.has(key)) throw new DotenvError(`${file}:${line}: export ${key} has no value set before it`);
      continue;
    }
    seen.add(key);
    entries.push({ key, file, line, written: value });
  }
  return entries;
}

/** Runs `$(command)`: the output, without its last line break. */
export type CommandRunner = (command: string, entry: DotenvEntry) => string;

/** One file's keys, each evaluated on first use. */
export class DotenvFile {
  private readonly entries: DotenvEntry[];
  private readonly values = new Map<DotenvEntry, string>();
  private readonly evaluating = new Set<DotenvEntry>();

  constructor(
    text: string,
    readonly file: string,
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly run: CommandRunner,
  ) {
    this.entries = parseDotenv(text, file);
  }

  keys(): string[] {
    return [...new Set(this.entries.map((e) => e.key))];
  }

  has(key: string): boolean {
    return this.entries.some((e) => e.key === key);
  }

  /** The key's value (its last line), or undefined when the file does not set it. */
  get(key: string): string | undefined {
    const entry = this.entries.filter((e) => e.key === key).pop();
    return entry ? this.valueOf(entry) : undefined;
  }

  private valueOf(e: DotenvEntry): string {
    const known = this.values.get(e);
    if (known !== undefined) return known;
    if (this.evaluating.has(e)) throw new DotenvError(`${e.file}:${e.line}: ${e.key} refers to itself`);
    this.evaluating.add(e);
    try {
      const value = this.evaluate(e);
      this.values.set(e, value);
      return value;
    } finally {
      this.evaluating.delete(e);
    }
  }

  private evaluate(e: DotenvEntry): string {
    const stripped = (e.written ?? "").trim();
    const quoted = /^(['"])([\s\S]*)\1$/.exec(stripped);
    if (quoted?.[1] === "'") return quoted[2];
    let value = quoted ? quoted[2] : stripped;
    if (quoted) value = value.replaceAll("\\n", "\\\\n").replaceAll("\\r", "\\\\r");
    value = value.replace(/\\([^$])/g, "$1");
    // What `$NAME` means here: the key's value as the file had it just before this line.
    const lookup = (name: string): string => {
      const earlier = this.entries.filter((x) => x.key === name && this.entries.indexOf(x) < this.entries.indexOf(e)).pop();
      return earlier ? this.valueOf(earlier) : (this.env[name] ?? "");
    };
    value = substituteCommands(value, (command) => this.run(substituteVariables(command, lookup), e));
    return substituteVariables(value, lookup);
  }
}

/** dotenv's `$NAME`, `${NAME}` (names case-insensitive letters, digits, `_`); `\$NAME` is
 * literal; a `$` followed by neither stays. */
export function substituteVariables(value: string, lookup: (name: string) => string): string {
  return value.replace(/(\\)?(\$)(?!\()\{?([A-Z0-9_]+)?\}?/gi, (all: string, escaped: string | undefined, _d: string, name: string | undefined) => {
    if (escaped) return all.slice(1);
    return name ? lookup(name) : all;
  });
}

/** Kamal's command substitution: each `$(…)` (parentheses nest; `\(`, `\)` and any escaped
 * character inside do not count) replaced by `run(command)`; `\$(…)` left as `$(…)`. */
export function substituteCommands(value: string, run: (command: string) => string): string {
  let out = "";
  let i = 0;
  while (i < value.length) {
    const escaped = value[i] === "\\" && value.startsWith("$(", i + 1);
    const at = escaped ? i + 1 : i;
    const end = value.startsWith("$(", at) ? commandEnd(value, at + 1) : -1;
    if (end < 0) {
      out += value[i++];
      continue;
    }
    out += escaped ? value.slice(at, end + 1) : run(value.slice(at + 2, end));
    i = end + 1;
  }
  return out;
}

/** The index of the `)` closing the `(` at `open`, or -1, as Kamal's pattern reads it: at
 * least one character inside, a backslash escaping the character after it (not a line
 * break), parentheses nesting (each with something inside). */
function commandEnd(value: string, open: number): number {
  let inside = 0;
  for (let j = open + 1; j < value.length; j++, inside++) {
    const c = value[j];
    if (c === "\\") {
      if (j + 1 >= value.length || value[j + 1] === "\n") return -1;
      j++;
    } else if (c === "(") {
      j = commandEnd(value, j);
      if (j < 0) return -1;
    } else if (c === ")") return inside > 0 ? j : -1;
  }
  return -1;
}

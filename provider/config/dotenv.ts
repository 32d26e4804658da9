/**
 * Kamal's secrets files: Kamal 1's `.env`, Kamal 2's `.kamal/secrets[.destination]`.
 * KEY=value lines, optional `export `, single or double quotes, `#` comments, and
 * `$NAME` / `${NAME}` references to keys defined earlier. Command substitution
 * (`$(kamal secrets fetch …)`) would run programs: it is an error naming the key.
 */
export class DotenvError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "DotenvError";
  }
}

export function parseDotenv(text: string, file = ".env"): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === "" || raw.startsWith("#")) continue;
    const m = raw.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/);
    if (!m) throw new DotenvError(file, i + 1, "expected KEY=value");
    const [, key, rest] = m;
    let value: string;
    if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) throw new DotenvError(file, i + 1, `${key}: unterminated single quote`);
      value = rest.slice(1, end);
    } else if (rest.startsWith('"')) {
      let j = 1;
      value = "";
      for (; j < rest.length && rest[j] !== '"'; j++) {
        if (rest[j] === "\\" && j + 1 < rest.length) {
          const n = rest[++j];
          value += n === "n" ? "\n" : n;
        } else value += rest[j];
      }
      if (j >= rest.length) throw new DotenvError(file, i + 1, `${key}: unterminated double quote`);
      value = expand(value, out, file, i + 1, key);
    } else {
      value = expand(rest.replace(/\s+#.*$/, "").trim(), out, file, i + 1, key);
    }
    out[key] = value;
  }
  return out;
}

function expand(value: string, known: Record<string, string>, file: string, line: number, key: string): string {
  if (value.includes("$(")) {
    throw new DotenvError(file, line, `${key}: command substitution $(…) is not supported: put the value itself, or set it with pulumi config set --secret ${key}`);
  }
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a, b) => known[a ?? b] ?? process.env[a ?? b] ?? "");
}

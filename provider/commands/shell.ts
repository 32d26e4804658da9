/**
 * The one function through which every string reaches a remote shell.
 *
 * Builders assemble argument lists; `shellJoin` quotes each argument for POSIX sh, so a
 * value (an image name, a label, a path) can never become shell syntax. Operators such as
 * `&&` or `|` only enter through the combinators below, which take already-built commands.
 */

const SAFE = /^[A-Za-z0-9_\-.,:/@%+=]+$/;

/** Quotes one argument for POSIX sh. */
export function shellQuote(value: string): string {
  if (value === "") return "''";
  if (SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A command line: each argument quoted and joined with spaces. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

/** Runs each command only if the previous one succeeded. */
export function allOf(...commands: string[]): string {
  return commands.map(group).join(" && ");
}

/** Runs commands until one succeeds. */
export function anyOf(...commands: string[]): string {
  return commands.map(group).join(" || ");
}

/** Pipes each command's stdout into the next. */
export function pipe(...commands: string[]): string {
  return commands.map(group).join(" | ");
}

/** Parenthesizes a command that has an operator outside single quotes. */
function group(command: string): string {
  let quoted = false;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i];
    if (ch === "'") quoted = !quoted;
    else if (!quoted && ch === "\\") i++;
    else if (!quoted && (ch === "|" || ch === "&" || ch === ";")) return `(${command})`;
  }
  return command;
}

/**
 * Splits a command string into words the way sh would (quotes and backslashes), without
 * expanding anything: `bin/jobs --queue 'a b'` becomes ["bin/jobs", "--queue", "a b"].
 * Kamal's deploy.yml writes `cmd` as one string; this keeps it data, never shell syntax.
 */
export function shellSplit(command: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i];
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === "\\" && i + 1 < command.length && '"\\$`'.includes(command[i + 1])) word += command[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote === "'" ? "single" : "double"} quote`);
  if (inWord) words.push(word);
  return words;
}

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

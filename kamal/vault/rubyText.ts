/**
 * Ruby's text conventions the adapters repeat to match Kamal's messages and parsing:
 * `String#split("/")`, `String#inspect` and `Array#inspect` (a list interpolated into a
 * message).
 */

/** Ruby's `path.split("/")`: trailing empty parts dropped ("a/b/" is ["a", "b"], "" is []). */
export function splitPath(path: string): string[] {
  const parts = path.split("/");
  while (parts.length && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** Ruby's `Array#inspect` of strings, as Kamal interpolates a list of names into a message. */
export function inspectList(strings: readonly string[]): string {
  return `[${strings.map(inspect).join(", ")}]`;
}

const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f", "\v": "\\v", "\b": "\\b", "\x07": "\\a", "\x1b": "\\e" };

/** Ruby's `String#inspect` (UTF-8): quotes, backslashes, interpolation starts and
 * non-printable characters escaped. */
export function inspect(s: string): string {
  const body = s.replace(/["\\]|#(?=[{$@])|[\p{Cc}\p{Zl}\p{Zp}\p{Cn}]/gu, (c) => {
    if (c === '"' || c === "\\" || c === "#") return `\\${c}`;
    if (ESCAPES[c]) return ESCAPES[c];
    if (c === "\u0085") return c; // Ruby prints NEL as is
    const code = c.codePointAt(0)!;
    const hex = code.toString(16).toUpperCase();
    return code > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, "0")}`;
  });
  return `"${body}"`;
}

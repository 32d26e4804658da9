/**
 * Ruby's Shellwords, as Kamal's secrets commands use them: `escape` (what `fetch --inline`
 * returns, so a secrets file can pass the JSON on to `extract`) and `split` (how an inline
 * `kamal secrets …` command line becomes its arguments). Same results as Ruby's for every
 * input, errors included.
 */

/** Ruby's `String#shellescape`. */
export function shellescape(s: string): string {
  if (s === "") return "''";
  return s.replace(/[^A-Za-z0-9_\-.,:+/@\n]/g, "\\$&").replace(/\n/g, "'\n'");
}

/** Ruby's `String#shellsplit`. */
export function shellsplit(line: string): string[] {
  const words: string[] = [];
  let field = "";
  const token = /\s*(?:([^\s\\'"]+)|'([^']*)'|"((?:[^"\\]|\\[\s\S])*)"|(\\[\s\S]?)|(\S))(\s)?/y;
  let m: RegExpExecArray | null;
  while (token.lastIndex < line.length && (m = token.exec(line))) {
    const [, word, sq, dq, esc, garbage, sep] = m;
    if (garbage !== undefined) throw new Error(`Unmatched quote: ${JSON.stringify(line)}`);
    field += word ?? sq ?? (dq !== undefined ? dq.replace(/\\([$`"\\\n])/g, "$1") : esc!.replace(/\\(.)/g, "$1"));
    // A separator, or the end of the line, ends the word (JavaScript never captures an
    // optional empty match, so the end is checked here).
    if (sep !== undefined || token.lastIndex >= line.length) {
      words.push(field);
      field = "";
    }
    if (m[0] === "") break;
  }
  return words;
}

/** What a secret looks like wherever text leaves the provider: logs, errors, state. */
export const REDACTED = "[REDACTED]";

/** Replaces every occurrence of each secret value in text. Longest secrets first so that
 * a secret containing another is not half-replaced. */
export function redact(text: string, secrets: Iterable<string> = []): string {
  const values = [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of values) out = out.split(s).join(REDACTED);
  return out;
}

/** The last `lines` lines of text, for error messages. */
export function tail(text: string, lines = 20): string {
  const all = text.replace(/\s+$/, "").split("\n");
  return all.slice(-lines).join("\n");
}

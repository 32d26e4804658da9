import type { z } from "zod";

/** A configuration error: every message starts with the config path it is about and
 * never repeats the received value (it may be a secret). */
export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.message}`).join("\n"));
    this.name = "ConfigError";
  }
}

export interface ConfigProblem {
  /** Dotted path from the component's arguments, e.g. `roles.web.healthcheck.path`. */
  path: string;
  message: string;
}

export function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  const parts = [prefix, ...path.map(String)].filter((p) => p !== "");
  return parts.join(".") || "(root)";
}

/** Turns zod issues into problems with full paths and value-free messages. */
export function problemsFrom(issues: readonly z.core.$ZodIssue[], prefix = ""): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({ path: joinPath(prefix, [...issue.path, key]), message: "is not a supported key" });
      }
    } else if (issue.code === "invalid_key" && issue.issues.length > 0) {
      out.push({ path: joinPath(prefix, issue.path), message: plain(issue.issues[0]) });
    } else if (
      issue.code === "invalid_union" &&
      issue.errors.length > 0 &&
      issue.errors.every((alt) => alt.length > 0 && alt.every(typeMismatch))
    ) {
      // No alternative had the right type: say which types would do (or that it is missing).
      const missing = issue.errors.every((alt) => alt.every((i) => i.code === "invalid_type" && /received undefined/.test(i.message)));
      if (missing) {
        out.push({ path: joinPath(prefix, issue.path), message: "is required" });
        continue;
      }
      const custom = !/^Invalid input/.test(issue.message);
      const types = [...new Set(issue.errors.flatMap((alt) => alt.flatMap(expectedTypes)))];
      out.push({ path: joinPath(prefix, issue.path), message: custom ? issue.message : `must be ${types.map(article).join(" or ")}` });
    } else if (issue.code === "invalid_union" && issue.errors.length > 0) {
      // Report the alternative whose type matched (then the one that got furthest)
      // rather than "invalid input".
      const best = [...issue.errors].sort((a, b) => score(b) - score(a))[0];
      const at = issue.path.length ? joinPath(prefix, issue.path) : prefix;
      out.push(...problemsFrom(best, at));
    } else {
      out.push({ path: joinPath(prefix, issue.path), message: plain(issue) });
    }
  }
  return out;
}

/** The value had the wrong type for this (possibly nested) union alternative. */
function typeMismatch(i: z.core.$ZodIssue): boolean {
  if (i.path.length > 0) return false;
  if (i.code === "invalid_type") return true;
  return i.code === "invalid_union" && i.errors.every((alt) => alt.length > 0 && alt.every(typeMismatch));
}

function expectedTypes(i: z.core.$ZodIssue): string[] {
  if (i.code === "invalid_type") return [i.expected];
  if (i.code === "invalid_union") return i.errors.flatMap((alt) => alt.flatMap(expectedTypes));
  return [];
}

function score(issues: readonly z.core.$ZodIssue[]): number {
  const typed = issues.every((i) => !typeMismatch(i)) ? 100 : 0;
  return typed + Math.max(0, ...issues.map((i) => i.path.length));
}

function plain(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") {
    if (/received undefined/.test(issue.message)) return "is required";
    const names: Record<string, string> = { int: "integer", array: "list", record: "map" };
    return `must be ${article(names[issue.expected] ?? issue.expected)}`;
  }
  return issue.message.replace(/^Invalid input: /, "");
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/**
 * The ERB found in real deploy.yml files, without Ruby: `<%= ENV["X"] %>`,
 * `<%= ENV.fetch("X") %>`, `<%= ENV.fetch("X", "default") %>`, `<%= ENV["X"] || "default" %>`,
 * `<%= File.read("path").strip %>`, and the dotenv-loading control line Kamal's templates
 * use. Anything else is an error that names the line: we never guess what Ruby would do.
 * ERB inside YAML comment lines is left alone (it cannot change the config).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseDotenv } from "./dotenv";

export class ErbError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "ErbError";
  }
}

export interface ErbContext {
  /** Environment visible to ENV[...] (a copy: dotenv loading adds to it). */
  env: Record<string, string | undefined>;
  /** Directory that relative File.read and Dotenv.load paths start from (the app root). */
  root: string;
  /** For messages. */
  file: string;
  /** Runs `` `command` `` expressions (as Kamal does) when given; otherwise they are errors. */
  shell?: (command: string, cwd: string) => string;
}

const STR = `(?:"([^"]*)"|'([^']*)')`;
const ENV_INDEX = new RegExp(`^ENV\\[${STR}\\]$`);
const ENV_FETCH = new RegExp(`^ENV\\.fetch\\(\\s*${STR}\\s*(?:,\\s*${STR}\\s*)?\\)$`);
const ENV_OR = new RegExp(`^ENV\\[${STR}\\]\\s*\\|\\|\\s*${STR}$`);
const FILE_READ = new RegExp(`^File\\.read\\(\\s*${STR}\\s*\\)(\\.strip)?$`);
const BACKTICKS = /^`([^`]*)`(\.strip)?$/;
const DOTENV_LOAD = new RegExp(`Dotenv\\.(?:load|overload)\\(\\s*${STR}\\s*\\)`);

export function renderErb(text: string, ctx: ErbContext): string {
  const lines = text.split("\n");
  return lines
    .map((line, i) => {
      if (!line.includes("<%")) return line;
      if (/^\s*#/.test(line)) return line;
      return line.replace(/<%(=?)(.*?)-?%>/g, (_m, out: string, code: string) => {
        const expr = code.trim();
        if (!out) {
          control(expr, ctx, i + 1);
          return "";
        }
        return evaluate(expr, ctx, i + 1);
      });
    })
    .join("\n");
}

function pick(a?: string, b?: string): string | undefined {
  return a ?? b;
}

function evaluate(expr: string, ctx: ErbContext, line: number): string {
  let m: RegExpMatchArray | null;
  if ((m = expr.match(ENV_INDEX))) {
    return ctx.env[pick(m[1], m[2])!] ?? "";
  }
  if ((m = expr.match(ENV_FETCH))) {
    const name = pick(m[1], m[2])!;
    const fallback = pick(m[3], m[4]);
    const v = ctx.env[name] ?? fallback;
    if (v === undefined) throw new ErbError(ctx.file, line, `ENV.fetch("${name}"): ${name} is not set`);
    return v;
  }
  if ((m = expr.match(ENV_OR))) {
    return ctx.env[pick(m[1], m[2])!] || pick(m[3], m[4])!;
  }
  if ((m = expr.match(FILE_READ))) {
    const file = path.resolve(ctx.root, pick(m[1], m[2])!);
    if (!existsSync(file)) throw new ErbError(ctx.file, line, `File.read: ${path.relative(ctx.root, file)} does not exist`);
    const content = readFileSync(file, "utf8");
    return m[5] ? content.trim() : content;
  }
  if ((m = expr.match(BACKTICKS)) && ctx.shell) {
    const out = ctx.shell(m[1], ctx.root);
    return m[2] ? out.trim() : out;
  }
  if (expr.includes("`") || /%x|system\(|IO\.popen/.test(expr)) {
    throw new ErbError(
      ctx.file,
      line,
      "ERB that runs a shell command is not run unless allowed (KamalApp's allowShellInErb): or set the value through ENV",
    );
  }
  throw new ErbError(ctx.file, line, `ERB expression not supported: only ENV["X"], ENV.fetch("X"[, "default"]), ENV["X"] || "default" and File.read("path")`);
}

function control(code: string, ctx: ErbContext, line: number): void {
  const m = code.match(DOTENV_LOAD);
  if (m) {
    const file = path.resolve(ctx.root, pick(m[1], m[2])!);
    if (existsSync(file)) {
      for (const [k, v] of Object.entries(parseDotenv(readFileSync(file, "utf8"), file))) ctx.env[k] ??= v;
    }
    return;
  }
  throw new ErbError(ctx.file, line, "ERB control code is not supported (only Dotenv.load of a secrets file)");
}

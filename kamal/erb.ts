/**
 * ERB in deploy.yml, rendered as Kamal renders it when Ruby is installed (every Kamal user has
 * it): `ruby`'s own ERB with trim_mode "-", in the app root, with the environment Kamal sets
 * (KAMAL_DESTINATION), so conditionals, `%x(…)`, backticks and any Ruby work exactly as in
 * Kamal. Without Ruby, a documented subset is rendered here: `<%= ENV["X"] %>`,
 * `<%= ENV.fetch("X") %>`, `<%= ENV.fetch("X", "default") %>`, `<%= ENV["X"] || "default" %>`,
 * `<%= File.read("path").strip %>`, backticks only with allowShellInErb, and the
 * dotenv-loading control line Kamal 1's templates use; anything else is an error naming the
 * line and saying to install Ruby: we never guess what Ruby would do. ERB inside YAML comment
 * lines is left alone by the subset (it cannot change the config).
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SecretsFiles } from "./secrets";

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
  /** Runs `` `command` `` expressions (as Kamal does) when given; otherwise they are errors
   * (the built-in subset only: Ruby runs whatever the template says, as Kamal does). */
  shell?: (command: string, cwd: string) => string;
  /** "ruby": Ruby's ERB (an error when Ruby is missing); "builtin": the subset; default:
   * Ruby when installed. */
  renderer?: "ruby" | "builtin";
}

let rubyFound: boolean | undefined;
/** Whether `ruby` is on PATH: looked up, not run (a deploy renders deploy.yml every time; one
 * process less). ERB is in Ruby's standard library. */
export function rubyInstalled(): boolean {
  rubyFound ??= (process.env.PATH ?? "").split(path.delimiter).some((d) => {
    try {
      accessSync(path.join(d || ".", "ruby"), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return rubyFound;
}

/** Kamal loads the dotenv gem; where it is not installed, templates that `require "dotenv"`
 * get this stand-in (KEY=value lines, quotes, comments; no substitution). */
const DOTENV_SHIM = `module Dotenv
  def self.parse(*files)
    files.each_with_object({}) do |f, h|
      next unless File.exist?(f)
      File.read(f).each_line do |line|
        m = line.match(/\\A\\s*(?:export\\s+)?([\\w.]+)\\s*[=:]\\s*(.*?)\\s*\\z/) or next
        v = m[2]
        v = if v.start_with?("'") then v[1...(v.index("'", 1) || v.size)]
            elsif v.start_with?('"') then v[1...(v.index('"', 1) || v.size)].gsub('\\n', "\\n")
            else v.sub(/\\s+#.*\\z/, "") end
        h[m[1]] = v
      end
    end
  end
  def self.load(*files) = parse(*files).each { |k, v| ENV[k] ||= v }
  def self.overload(*files) = parse(*files).each { |k, v| ENV[k] = v }
end
`;

let shimDir: string | undefined;
function dotenvShimDir(): string {
  if (!shimDir) {
    shimDir = mkdtempSync(path.join(os.tmpdir(), "kamal-erb-"));
    writeFileSync(path.join(shimDir, "dotenv.rb"), DOTENV_SHIM);
  }
  return shimDir;
}

/** Kamal loads ActiveSupport, and real templates use its `.presence`/`.blank?`; where it is
 * not installed, those three get a stand-in. */
const ACTIVE_SUPPORT = [
  'begin; require "active_support"; require "active_support/core_ext/object/blank"; rescue LoadError',
  "  class Object; def blank? = respond_to?(:empty?) ? !!empty? : !self; def present? = !blank?; def presence = present? ? self : nil; end",
  "  class String; def blank? = strip.empty?; end",
  "end",
].join("\n");

const RUBY_RENDER = [
  ACTIVE_SUPPORT,
  'begin; gem "dotenv"; rescue LoadError; $LOAD_PATH.push(ARGV[1]); end',
  '$stdout.write(ERB.new($stdin.read, trim_mode: "-").tap { |e| e.filename = ARGV[0] }.result)',
].join("\n");

/** Renders with Ruby's ERB; a Ruby error names the file and line (never a value). */
function renderWithRuby(text: string, ctx: ErbContext): string {
  try {
    return execFileSync("ruby", ["-rerb", "-e", RUBY_RENDER, ctx.file, dotenvShimDir()], {
      input: text,
      cwd: ctx.root,
      env: ctx.env as NodeJS.ProcessEnv,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? "");
    const line = Number(/^(\d+)/.exec(stderr.split(`${ctx.file}:`)[1] ?? "")?.[1] ?? 0);
    // The exception's class only: its message may quote values from the environment.
    const kind = /\(([A-Z][A-Za-z:]*(?:Error|Exception))\)/.exec(stderr)?.[1] ?? "an error";
    throw new ErbError(ctx.file, line, `Ruby's ERB raised ${kind} rendering the template`);
  }
}



const STR = `(?:"([^"]*)"|'([^']*)')`;
const ENV_INDEX = new RegExp(`^ENV\\[${STR}\\]$`);
const ENV_FETCH = new RegExp(`^ENV\\.fetch\\(\\s*${STR}\\s*(?:,\\s*${STR}\\s*)?\\)$`);
const ENV_OR = new RegExp(`^ENV\\[${STR}\\]\\s*\\|\\|\\s*${STR}$`);
const FILE_READ = new RegExp(`^File\\.read\\(\\s*${STR}\\s*\\)(\\.strip)?$`);
const BACKTICKS = /^`([^`]*)`(\.strip)?$/;
const DOTENV_LOAD = new RegExp(`Dotenv\\.(?:load|overload)\\(\\s*${STR}\\s*\\)`);

export function renderErb(text: string, ctx: ErbContext): string {
  if (!text.includes("<%")) return text;
  const ruby = ctx.renderer === "ruby" || (ctx.renderer === undefined && rubyInstalled());
  if (ruby) return renderWithRuby(text, ctx);
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
      "ERB that runs a shell command is not run without Ruby unless allowed (KamalApp's allowShellInErb): install Ruby to render it as Kamal does, or set the value through ENV",
    );
  }
  throw new ErbError(ctx.file, line, `ERB expression not supported without Ruby: only ENV["X"], ENV.fetch("X"[, "default"]), ENV["X"] || "default" and File.read("path"); install Ruby (apt install ruby) to render it as Kamal does`);
}

function control(code: string, ctx: ErbContext, line: number): void {
  const m = code.match(DOTENV_LOAD);
  if (m) {
    const file = path.resolve(ctx.root, pick(m[1], m[2])!);
    if (existsSync(file)) {
      const loaded = new SecretsFiles({ appRoot: ctx.root, kamal: 1, files: [path.relative(ctx.root, file)], env: ctx.env });
      for (const k of loaded.keys()) ctx.env[k] ??= loaded.get(k);
    }
    return;
  }
  throw new ErbError(ctx.file, line, "ERB control code is not supported without Ruby (only Dotenv.load of a secrets file); install Ruby (apt install ruby) to render it as Kamal does");
}

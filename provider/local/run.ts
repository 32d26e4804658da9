/**
 * Runs commands on the deploying machine (builds, the registry login, git): the local
 * counterpart of the SSH executor. No shell: an argument list goes to the program as it is.
 * Secrets reach a command through its stdin or its environment, never its arguments; every
 * error and streamed line has them replaced (ssh/redact.ts, the one redaction function).
 */
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import type { LocalCommand } from "../commands/build";
import { redact, tail } from "../ssh/redact";

export interface LocalRunOptions {
  cwd?: string;
  /** Added to the inherited environment (build secrets, DOCKER_HOST). */
  env?: Record<string, string>;
  /** Written to stdin, then closed; or a stream piped into it. */
  stdin?: string | Readable;
  /** Values to replace with [REDACTED] in errors and lines. */
  secrets?: Iterable<string>;
  /** Each complete output line (stdout and stderr), redacted. */
  onLine?: (line: string) => void;
  timeoutMs?: number;
  /** Keep stdout as bytes (a tar stream) instead of text. */
  binary?: boolean;
}

export interface LocalResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A local command that failed or ran out of time: the command (redacted), its exit status
 * and the last lines it printed. */
export class LocalCommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly outputTail: string,
    readonly timedOut = false,
  ) {
    super(`${timedOut ? "did not finish in time" : exitCode === null ? "was killed" : `failed with exit code ${exitCode}`}: ${command}${outputTail ? `\n--- output (last lines) ---\n${outputTail}` : ""}`);
    this.name = "LocalCommandError";
  }
}

/** Runs a command; resolves with its output whatever its exit code (never throws on one). */
export function runLocal(cmd: LocalCommand, o: LocalRunOptions = {}): Promise<LocalResult & { timedOut: boolean }> {
  const secrets = [...(o.secrets ?? [])];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.argv[0], cmd.argv.slice(1), { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const partial = { stdout: "", stderr: "" };
    const feed = (which: "stdout" | "stderr", chunk: string) => {
      if (!o.onLine) return;
      const text = partial[which] + chunk;
      const parts = text.split("\n");
      partial[which] = parts.pop() ?? "";
      for (const l of parts) o.onLine(redact(l.replace(/\r$/, ""), secrets));
    };
    child.stdout.on("data", (d: Buffer) => {
      const s = o.binary ? "" : d.toString();
      stdout += s;
      feed("stdout", s);
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      feed("stderr", d.toString());
    });
    const timer = o.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill("SIGTERM");
          setTimeout(() => child.kill("SIGKILL"), 5000).unref();
        }, o.timeoutMs)
      : undefined;
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(new LocalCommandError(redact(cmd.argv.join(" "), secrets), null, (e as NodeJS.ErrnoException).code === "ENOENT" ? `${cmd.argv[0]}: command not found` : e.message));
    });
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      for (const which of ["stdout", "stderr"] as const) if (partial[which] && o.onLine) o.onLine(redact(partial[which], secrets));
      resolve({ code: code ?? -1, stdout: redact(stdout, secrets), stderr: redact(stderr, secrets), timedOut });
    });
    child.stdin.on("error", () => {}); // a command that exits without reading its stdin
    if (typeof o.stdin === "string") child.stdin.end(o.stdin);
    else if (o.stdin) o.stdin.pipe(child.stdin);
    else child.stdin.end();
  });
}

/** Runs a command; throws LocalCommandError unless it exits 0. */
export async function execLocal(cmd: LocalCommand, o: LocalRunOptions = {}): Promise<LocalResult> {
  const r = await runLocal(cmd, o);
  if (r.code !== 0 || r.timedOut) {
    const secrets = [...(o.secrets ?? [])];
    throw new LocalCommandError(redact(cmd.argv.join(" "), secrets), r.timedOut ? null : r.code, tail(`${r.stdout}\n${r.stderr}`.trim(), 20), r.timedOut);
  }
  return r;
}

/** Pipes one command's stdout into another's stdin (a git archive into tar); throws naming
 * whichever failed. */
export async function pipeLocal(from: LocalCommand, to: LocalCommand, o: { cwdFrom?: string; cwdTo?: string; timeoutMs?: number } = {}): Promise<void> {
  const producer = spawn(from.argv[0], from.argv.slice(1), { cwd: o.cwdFrom, stdio: ["ignore", "pipe", "pipe"] });
  let producerErr = "";
  producer.stderr.on("data", (d: Buffer) => (producerErr += d.toString()));
  const produced = new Promise<number>((resolve, reject) => {
    producer.on("error", (e) => reject(new LocalCommandError(from.argv.join(" "), null, e.message)));
    producer.on("close", (code) => resolve(code ?? -1));
  });
  const consumed = runLocal(to, { cwd: o.cwdTo, stdin: producer.stdout, timeoutMs: o.timeoutMs });
  const [code, r] = await Promise.all([produced, consumed]);
  if (code !== 0) throw new LocalCommandError(from.argv.join(" "), code, tail(producerErr.trim()));
  if (r.code !== 0) throw new LocalCommandError(to.argv.join(" "), r.code, tail(r.stderr.trim()));
}

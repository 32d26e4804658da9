/**
 * A hook on the machine running Pulumi (Kamal's `.kamal/hooks/<name>`): run as Kamal runs it
 * (the file itself, its shebang deciding the interpreter, in the app's root, the inherited env
 * plus KAMAL_*), when its trigger (a new deploy) or its file changes. Its output streams as
 * progress lines, secrets redacted; a failure (non-zero exit, or past its timeout) fails the
 * resource, so nothing that depends on it changes. A no-op `up` runs nothing.
 */
import { spawn } from "node:child_process";
import { kamalTime } from "../commands/audit";
import { hook, type HookConfig } from "../config/schemas";
import { parseInputs } from "../config/fields";
import { diffResource, mustAct, performer, progress, Secrets, StepError, validate } from "./common";

import type { Inputs } from "./handlers";

const TAIL_LINES = 20;
const pathOf = (key: string) => `hooks.${key}`;

export function check(_olds: Inputs, news: Inputs) {
  return { inputs: news, failures: validate(hook, news, pathOf).failures };
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  return diffResource(hook, olds, news);
}

export async function create(news: Inputs) {
  const cfg = parseInputs(hook, news);
  return { id: `hook/${cfg.name}`, outs: { ...news, ...(await run(cfg)) } };
}

export async function update(_id: string, olds: Inputs, news: Inputs) {
  const cfg = parseInputs(hook, news);
  if (!mustAct(hook, olds, news)) return { outs: { ...news, ranAt: olds.ranAt } };
  return { outs: { ...news, ...(await run(cfg)) } };
}

export async function read(id: string, props: Inputs) {
  return { id, props };
}

export async function remove(): Promise<void> {}

async function run(cfg: HookConfig): Promise<{ ranAt: string }> {
  const secrets = new Secrets(hook, cfg);
  const where = "local";
  const at = `running the ${cfg.name} hook`;
  const recordedAt = kamalTime();
  if (cfg.skip) {
    progress(where, `${cfg.name} hook not run (--skip-hooks)`);
    return { ranAt: recordedAt };
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...cfg.env,
    ...cfg.secretEnv,
    KAMAL_RECORDED_AT: recordedAt,
    KAMAL_PERFORMER: performer(cfg.cwd),
    // The provider starts with the update: its uptime is the deploy's runtime so far.
    ...(cfg.name === "post-deploy" ? { KAMAL_RUNTIME: String(Math.round(process.uptime())) } : {}),
  };
  progress(where, `running the ${cfg.name} hook (${cfg.path})`);
  const tail: string[] = [];
  const started = Date.now();
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error; timedOut: boolean }>((resolve) => {
    // Its own process group: at the timeout the hook and everything it started are stopped.
    const child = spawn(cfg.path, cfg.args, { cwd: cfg.cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const signal = (s: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, s);
      } catch {
        /* already gone */
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      signal("SIGTERM");
      setTimeout(() => signal("SIGKILL"), 5000).unref();
    }, cfg.timeout * 1000);
    for (const stream of [child.stdout, child.stderr]) {
      let partial = "";
      stream.on("data", (d: Buffer) => {
        const parts = (partial + d.toString()).split("\n");
        partial = parts.pop() ?? "";
        for (const l of parts) show(l);
      });
      stream.on("end", () => partial && show(partial));
    }
    function show(line: string) {
      const shown = secrets.redact(line);
      tail.push(shown);
      if (tail.length > TAIL_LINES) tail.shift();
      progress(where, `${cfg.name}: ${shown}`);
    }
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, error, timedOut });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    });
  });
  const output = tail.length ? `\n--- last output of ${cfg.name} ---\n${tail.join("\n")}` : "";
  if (result.error) {
    const why = (result.error as NodeJS.ErrnoException).code === "EACCES" ? "it is not executable (chmod +x it)" : result.error.message;
    throw new StepError(where, at, result.error, `${cfg.path} could not be run: ${secrets.redact(why)}; nothing was deployed after it`);
  }
  if (result.timedOut) throw new StepError(where, at, new Error("timeout"), `it did not finish within ${cfg.timeout}s and was stopped; nothing was deployed after it${output}`);
  if (result.code !== 0) {
    const status = result.code === null ? `signal ${result.signal}` : `exit code ${result.code}`;
    throw new StepError(where, at, new Error(status), `it failed with ${status}; nothing was deployed after it${output}`);
  }
  progress(where, `${cfg.name} hook done (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  return { ranAt: recordedAt };
}

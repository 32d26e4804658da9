/**
 * The Pulumi CLI, run directly: one process per step a command needs, nothing else. (The
 * Automation API runs `pulumi version` and `stack select` before every operation and reads
 * outputs and history after each update: seconds a deploy does not need.) The project's
 * settings, its selected stack and the stack's plain config values are read from their files,
 * as the CLI itself reads them; where a file does not say, the CLI is asked.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { backendEnv } from "./backend";

export interface PulumiResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pulumi <args>` in the project's directory; never throws on an exit code. */
export function pulumi(dir: string, args: string[], o: { env?: Record<string, string>; onOutput?: (chunk: string) => void; input?: string } = {}): Promise<PulumiResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", [...args, "--non-interactive"], {
      cwd: dir,
      env: { PULUMI_SKIP_UPDATE_CHECK: "true", ...compileCache(), ...backendEnv(o.env?.PULUMI_BACKEND_URL ?? backendUrlOf(dir)), ...process.env, ...o.env },
      stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (o.input !== undefined) child.stdin?.end(o.input);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      o.onOutput?.(d.toString());
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      o.onOutput?.(d.toString());
    });
    child.on("error", (e) => reject((e as NodeJS.ErrnoException).code === "ENOENT" ? new Error("the pulumi command is not installed (or not on PATH)") : e));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Node's compile cache for the program and provider processes the update starts (they
 * load the same modules every time), unless the user chose otherwise. */
function compileCache(): Record<string, string> {
  return { NODE_COMPILE_CACHE: path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "pulumi-kamal", "node-compile-cache") };
}

/** The backend the project's commands use: PULUMI_BACKEND_URL, else Pulumi.yaml's. */
export function backendUrlOf(dir: string): string | undefined {
  if (process.env.PULUMI_BACKEND_URL) return process.env.PULUMI_BACKEND_URL;
  try {
    return projectOf(dir)?.backendUrl;
  } catch {
    return undefined;
  }
}

export interface Project {
  name: string;
  /** Pulumi.yaml's path. */
  file: string;
  backendUrl?: string;
}

export function projectOf(dir: string): Project | undefined {
  for (const f of ["Pulumi.yaml", "Pulumi.yml"]) {
    const file = path.join(dir, f);
    if (!existsSync(file)) continue;
    const doc = (YAML.parse(readFileSync(file, "utf8")) ?? {}) as { name?: string; backend?: { url?: string } };
    if (!doc.name) return undefined;
    return { name: doc.name, file, backendUrl: doc.backend?.url };
  }
  return undefined;
}

/** The stack selected in the project (`pulumi stack select`), from the CLI's workspace file;
 * undefined when it does not say. */
export function selectedStack(project: Project): string | undefined {
  const home = process.env.PULUMI_HOME ?? path.join(os.homedir(), ".pulumi");
  const hash = createHash("sha1").update(project.file).digest("hex");
  const file = path.join(home, "workspaces", `${project.name}-${hash}-workspace.json`);
  if (!existsSync(file)) return undefined;
  try {
    const ws = JSON.parse(readFileSync(file, "utf8")) as { stack?: string; stacks?: Record<string, string> };
    const backend = process.env.PULUMI_BACKEND_URL ?? project.backendUrl;
    const full = (backend && ws.stacks?.[backend]) ?? (ws.stacks && Object.values(ws.stacks).length === 1 ? Object.values(ws.stacks)[0] : undefined) ?? ws.stack;
    return full?.split("/").pop();
  } catch {
    return undefined;
  }
}

/** The stack's settings file (`Pulumi.<stack>.yaml`) in the project's directory. */
export function stackConfigFile(dir: string, stack: string): string {
  return path.join(dir, `Pulumi.${stack}.yaml`);
}

/** A config key without the project's namespace (`app:version` is `version`). */
export function bareConfigKey(project: Project, key: string): string {
  return key.startsWith(`${project.name}:`) ? key.slice(project.name.length + 1) : key;
}

/** The stack's plain (not secret) config values, from Pulumi.<stack>.yaml, by key without
 * the project's namespace; a secret value reads as undefined. */
export function stackConfig(dir: string, project: Project, stack: string): Record<string, string | undefined> {
  const file = stackConfigFile(dir, stack);
  if (!existsSync(file)) return {};
  const doc = (YAML.parse(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config ?? {}).map(([k, v]) => [bareConfigKey(project, k), typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v) : undefined]),
  );
}

/**
 * Puts one config key back by restoring the stack's settings file as it was before an update
 * set it (`pulumi up --config` writes the file), when nothing else in it changed since: a
 * file write instead of a `pulumi config` call. False when the file is not as expected (the
 * caller then asks the Pulumi CLI).
 */
export function restoreConfigFile(dir: string, project: Project, stack: string, key: string, before: string | undefined): boolean {
  const file = stackConfigFile(dir, stack);
  if (before === undefined || !existsSync(file)) return false;
  const others = (text: string) => {
    const doc = (YAML.parse(text) ?? {}) as { config?: Record<string, unknown> };
    // Compared in key order: what matters is what the file says, not how Pulumi laid it out.
    const sorted = (o: Record<string, unknown>) => Object.entries(o).sort(([a], [b]) => a.localeCompare(b));
    const config = sorted(doc.config ?? {}).filter(([k]) => bareConfigKey(project, k) !== bareConfigKey(project, key));
    return JSON.stringify([sorted({ ...doc, config: undefined }), config]);
  };
  try {
    if (others(readFileSync(file, "utf8")) !== others(before)) return false;
    writeFileSync(file, before);
    return true;
  } catch {
    return false;
  }
}

/** The text of the stack's settings file, if it has one. */
export function stackConfigText(dir: string, stack: string): string | undefined {
  const file = stackConfigFile(dir, stack);
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}

/** The text of the stack's checkpoint when the backend is a local directory (`file://`), as
 * the CLI lays it out; undefined for any other backend, or when it is not where expected. */
export function localCheckpoint(dir: string, project: Project, stack: string): string | undefined {
  const url = process.env.PULUMI_BACKEND_URL ?? project.backendUrl;
  if (!url?.startsWith("file://")) return undefined;
  const root = path.resolve(dir, url.slice("file://".length).replace(/^~(?=\/)/, os.homedir()));
  for (const f of [path.join(root, ".pulumi/stacks", project.name, `${stack}.json`), path.join(root, ".pulumi/stacks", `${stack}.json`)]) {
    if (existsSync(f)) return readFileSync(f, "utf8");
    if (existsSync(`${f}.gz`)) return gunzipSync(readFileSync(`${f}.gz`)).toString("utf8");
  }
  return undefined;
}

/** `pulumi stack export --show-secrets`: the stack's state, secrets in this process only. */
export async function exportStack(dir: string, stack: string): Promise<{ deployment?: { resources?: { urn: string; type: string; outputs?: Record<string, unknown>; delete?: boolean }[] } }> {
  const r = await pulumi(dir, ["stack", "export", "--show-secrets", "--stack", stack]);
  if (r.code !== 0) throw new Error(firstError(r.stderr || r.stdout));
  return JSON.parse(r.stdout);
}

/** The CLI's own message, without its decoration. */
export function firstError(text: string): string {
  const err = text.split("\n").find((l) => /^error: /.test(l.trim()));
  return (err ?? text.split("\n").find((l) => l.trim()) ?? "").trim().replace(/^error: /, "");
}

/** Running the pulumi-kamal CLI as a user would: the built command, in a project directory. */
import { spawn } from "node:child_process";
import path from "node:path";
import type { PulumiRun } from "../../testbed/pulumi";
import { repoRoot } from "../../testbed/sandbox";

/** The built command (npm run build). */
export const CLI = path.join(repoRoot, "dist/cli/main.js");

/** What a run printed, both streams. */
export const out = (r: PulumiRun) => r.stdout + r.stderr;

/** `pulumi-kamal ARGS` in a project, with its environment; never rejects on an exit code. */
export function runCli(args: string[], project: { dir: string; env: NodeJS.ProcessEnv }): Promise<PulumiRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: project.dir, env: project.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs the real Pulumi CLI on a project directory with the file backend. */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "./sandbox";

export interface PulumiRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fresh project directory inside the repository (so it resolves the repo's node_modules). */
export function scratchProject(name: string, files: Record<string, string>): string {
  const base = path.join(repoRoot, "test/.work");
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(path.join(base, `${name}-`));
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), content);
  }
  mkdirSync(path.join(dir, ".pulumi-state"), { recursive: true });
  return dir;
}

export class PulumiProject {
  constructor(
    readonly dir: string,
    readonly stack = "test",
    private readonly opts: { projectBackend?: boolean; backendDir?: string; passphrase?: string } = {},
  ) {}

  get env(): NodeJS.ProcessEnv {
    const { PULUMI_BACKEND_URL: _ignored, ...inherited } = process.env;
    return {
      ...inherited,
      ...(this.opts.projectBackend ? {} : { PULUMI_BACKEND_URL: `file://${this.opts.backendDir ?? path.join(this.dir, ".pulumi-state")}` }),
      PULUMI_CONFIG_PASSPHRASE: this.opts.passphrase ?? process.env.PULUMI_CONFIG_PASSPHRASE ?? "sandbox-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      NODE_OPTIONS: "--disable-warning=ExperimentalWarning",
    };
  }

  /** Runs `pulumi <args>`; never throws, the caller asserts on the result. */
  run(args: string[], opts: { onOutput?: (chunk: string) => void } = {}): Promise<PulumiRun> {
    return new Promise((resolve, reject) => {
      const child = spawn("pulumi", [...args, "--non-interactive"], { cwd: this.dir, env: this.env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        opts.onOutput?.(d.toString());
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        opts.onOutput?.(d.toString());
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  async ensureStack(): Promise<void> {
    const sel = await this.run(["stack", "select", this.stack]);
    if (sel.code !== 0) {
      const init = await this.run(["stack", "init", this.stack]);
      if (init.code !== 0) throw new Error(`pulumi stack init failed:\n${init.stderr}`);
    }
  }

  up(extra: string[] = []) {
    return this.run(["up", "--yes", "--skip-preview", "--stack", this.stack, ...extra]);
  }
  preview(extra: string[] = []) {
    return this.run(["preview", "--diff", "--stack", this.stack, ...extra]);
  }
  destroy(extra: string[] = []) {
    return this.run(["destroy", "--yes", "--skip-preview", "--stack", this.stack, ...extra]);
  }
  refresh(extra: string[] = []) {
    return this.run(["refresh", "--yes", "--skip-preview", "--stack", this.stack, ...extra]);
  }
}

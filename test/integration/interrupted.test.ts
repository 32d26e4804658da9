/**
 * Reliability: a `pulumi up` killed in the middle of a swap leaves both containers running;
 * the next `pulumi up` converges on the configured version with one container serving.
 */
import { spawn } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/executor";
import { httpGet } from "../helpers/http";
import { PulumiProject, scratchProject } from "../helpers/pulumi";
import { host, repoRoot, target } from "../helpers/sandbox";

const pool = new SshPool();
afterAll(() => pool.closeAll());

async function running(h: string): Promise<string[]> {
  const conn = await pool.connect(target(h));
  return (await conn.exec("docker ps --filter label=service=bench --format '{{.Names}}'")).stdout.split("\n").filter(Boolean).sort();
}

describe("an interrupted deploy", () => {
  it("converges on the next pulumi up", async () => {
    const conn = await pool.connect(target("app1"));
    await conn.exec("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
    const p = new PulumiProject(
      scratchProject("interrupted", {
        "Pulumi.yaml": "name: kp-interrupted\nruntime: nodejs\n",
        "package.json": JSON.stringify({ name: "kp-interrupted", main: "index.ts" }),
        "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/bench"))};\n`,
      }),
    );
    await p.ensureStack();
    for (const [k, v] of [["hosts", '["app1"]'], ["version", "v1"]]) await p.run(["config", "set", "--stack", p.stack, k, v]);
    await p.run(["config", "set", "--secret", "--stack", p.stack, "token", "t"]);
    expect((await p.up()).code).toBe(0);
    await p.run(["config", "set", "--stack", p.stack, "version", "v2"]);
    // v2 answers its health check only after 4 s: the kill lands mid-swap, whatever the speed.
    await p.run(["config", "set", "--stack", p.stack, "healthyAfter", "4"]);

    // Kill the whole `pulumi up` (engine, language host, provider) once the new container is up.
    const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", p.stack], {
      cwd: p.dir,
      env: p.env,
      detached: true,
    });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        out += d.toString();
        if (/\[kamal\] app1: starting bench-web-v2/.test(out)) {
          setTimeout(() => {
            process.kill(-child.pid!, "SIGKILL");
            resolve();
          }, 1500);
          child.stdout.off("data", onData);
        }
      };
      child.stdout.on("data", onData);
      child.on("close", () => reject(new Error(`pulumi up ended before it could be interrupted:\n${out}`)));
    });
    await new Promise((r) => setTimeout(r, 500));
    // Plugins run in process groups of their own: end whatever still runs in the project.
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        if (readlinkSync(`/proc/${pid}/cwd`) === p.dir) process.kill(Number(pid), "SIGKILL");
      } catch {
        /* gone, or not ours to read */
      }
    }
    expect(await running("app1")).toEqual(["bench-web-v1", "bench-web-v2"]);

    // A killed update leaves its lock behind; clearing it is the operator's first step.
    await p.run(["cancel", "--yes", "--stack", p.stack]);
    const up = await p.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    // The deploy lock the killed run held names a process that is gone: taken over.
    expect(up.stdout).toMatch(/\[kamal\] app1: taking over the deploy lock \.kamal\/lock-bench left by pulumi-kamal on \S+@\S+ pid \d+ since \S+ \(version v2, "Automatic deploy lock"\): that process is gone/);
    expect(await running("app1")).toEqual(["bench-web-v2"]);
    const v = JSON.parse((await httpGet(`http://${host("app1").address}/version`)).body);
    expect(v.version).toBe("v2");
    const versions = await p.run(["stack", "output", "versions", "--json", "--stack", p.stack]);
    expect(JSON.parse(versions.stdout)).toEqual(["v2"]);
    expect((await p.destroy()).code).toBe(0);
  });
});

/** Running the benchmark's Pulumi programs and measuring them: timed updates, peak memory and CPU of the engine's processes, SSH counters, the reference programs. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { PulumiProject, scratchProject } from "../testbed/pulumi";
import { repoRoot } from "../testbed/sandbox";
import { timing } from "./stats";
import { REPS, statsFile } from "./context";


export async function benchProject(name: string): Promise<PulumiProject> {
  const dir = scratchProject(name, {
    "Pulumi.yaml": `name: kp-${name}\nruntime: nodejs\n`,
    "package.json": JSON.stringify({ name: `kp-${name}`, main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/bench"))};\n`,
  });
  const p = new PulumiProject(dir, "bench");
  await p.ensureStack();
  return p;
}

export async function set(p: PulumiProject, key: string, value: string, secret = false) {
  const r = await p.run(["config", "set", ...(secret ? ["--secret"] : []), "--stack", p.stack, key, value]);
  if (r.code !== 0) throw new Error(r.stderr);
}

/** Extra `pulumi up` flags: the fleet runs lift the engine's default parallelism (4 per
 * core: 8 here), which would otherwise update a 10-host role in two waves. */
let upFlags: string[] = [];
export function setUpFlags(flags: string[]) {
  upFlags = flags;
}

export async function timedUp(p: PulumiProject, expectOk = true): Promise<{ ms: number; out: string; code: number }> {
  const t0 = performance.now();
  const r = await p.up(upFlags);
  const ms = performance.now() - t0;
  if (expectOk && r.code !== 0) throw new Error(`pulumi up failed:\n${r.stdout}\n${r.stderr}`);
  return { ms, out: r.stdout + r.stderr, code: r.code };
}

/** Peak RSS (MiB) of the provider and program processes while `fn` runs: the kernel's
 * high-water mark (VmHWM) of each such process, read while it lives. */
export async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; providerMiB: number; programMiB: number; cpu: CpuUse }> {
  const peaks = { provider: 0, program: 0 };
  const ticks = new Map<string, { kind: "provider" | "program" | "engine"; ticks: number }>();
  const machine0 = machineTicks();
  const timer = setInterval(() => {
    let ps = "";
    try {
      ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
    } catch {
      return;
    }
    for (const line of ps.split("\n")) {
      const e = line.trim().match(/^(\d+)\s+\S*pulumi (up|preview)\b/);
      if (e) {
        const t = processTicks(e[1]);
        if (t !== undefined) ticks.set(e[1], { kind: "engine", ticks: t });
        continue;
      }
      const m = line.trim().match(/^(\d+)\s+(\S*node)\s+(\S+)/);
      if (!m) continue;
      const kind = m[3].includes("@pulumi/pulumi/cmd/dynamic-provider") ? "provider" : m[3].includes("@pulumi/pulumi/cmd/run") ? "program" : undefined;
      if (!kind) continue;
      try {
        const hwm = readFileSync(`/proc/${m[1]}/status`, "utf8").match(/^VmHWM:\s+(\d+) kB/m);
        if (hwm) peaks[kind] = Math.max(peaks[kind], Number(hwm[1]));
        const t = processTicks(m[1]);
        if (t !== undefined) ticks.set(m[1], { kind, ticks: t });
      } catch {
        /* the process ended between ps and the read */
      }
    }
  }, 100);
  try {
    const t0 = performance.now();
    const result = await fn();
    const wallS = (performance.now() - t0) / 1000;
    const machine1 = machineTicks();
    const of = (k: string) => Math.round(([...ticks.values()].filter((t) => t.kind === k).reduce((n, t) => n + t.ticks, 0) / HZ) * 100) / 100;
    const busy = (machine1.busy - machine0.busy) / (machine1.total - machine0.total);
    const cpu = { machineBusy: Math.round(busy * 100) / 100, wallS: Math.round(wallS * 100) / 100, providerS: of("provider"), programS: of("program"), engineS: of("engine") };
    return { result, providerMiB: Math.round(peaks.provider / 1024), programMiB: Math.round(peaks.program / 1024), cpu };
  } finally {
    clearInterval(timer);
  }
}

/** CPU use while a command ran: the machine's busy fraction (all cores), its wall time, and
 * CPU seconds of our provider, the program and the Pulumi engine (last sample of each). */
export interface CpuUse {
  machineBusy: number;
  wallS: number;
  providerS: number;
  programS: number;
  engineS: number;
}
export const HZ = 100; // USER_HZ: the unit of /proc/<pid>/stat and /proc/stat on Linux

export function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + cpu[4];
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** utime + stime of a process and its reaped children, in ticks. */
export function processTicks(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return undefined;
  }
}

/** SSH counters per host of the last provider process that wrote stats. */
export function sshStats(): Record<string, { connections: number; commands: number; uploads: number; bytesSent: number; bytesReceived: number }> {
  const lines = readFileSync(statsFile, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const lastPid = lines[lines.length - 1].pid;
  const mine = lines.filter((l) => l.pid === lastPid);
  return mine[mine.length - 1].hosts;
}

/** A deployed reference program for the preview comparison. */
export async function referenceProject(name: string, program: string): Promise<PulumiProject> {
  const p = new PulumiProject(
    scratchProject(name, { "Pulumi.yaml": `name: kp-${name}\nruntime: nodejs\n`, "package.json": JSON.stringify({ name, main: "index.ts" }), "index.ts": program }),
    "bench",
  );
  await p.ensureStack();
  await p.up();
  return p;
}

/** `pulumi preview` and (unless told not to) a no-op `pulumi up`, REPS times each. */
export async function previewAndNoop(p: PulumiProject, noop = true) {
  const previews: number[] = [];
  const noops: number[] = [];
  for (let i = 0; i < REPS; i++) {
    let t0 = performance.now();
    await p.preview();
    previews.push(performance.now() - t0);
    if (!noop) continue;
    t0 = performance.now();
    await p.up(upFlags);
    noops.push(performance.now() - t0);
  }
  return { preview: timing(previews), noopUp: noop ? timing(noops) : undefined };
}

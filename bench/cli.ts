/**
 * The path Kamal users take, measured as they take it: `pulumi-kamal` on a Kamal 2 project
 * made by `pulumi-kamal init` (examples/kamal2's deploy.yml, on app1 and app2, the sandbox's
 * images: `--skip-push`), beside `pulumi up` of the same program and the engine's own floor.
 * Version changes under load (0 failed requests required), a no-op deploy, a preview, a
 * rollback with the registry stopped, a version that never passes its health check (time to
 * the error against its deadline), and where one deploy's time goes: each process the
 * deploy starts, timed (strace), grouped into the phases a reader can act on.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { shellJoin } from "../provider/commands/shell";
import type { SshPool } from "../provider/ssh/pool";
import { PulumiProject, scratchProject } from "../testbed/pulumi";
import { host, registryFault, repoRoot, sandbox, onHost, target } from "../testbed/sandbox";
import { timing, type Timing } from "./stats";


export interface CliFigures {
  versionChange: Timing;
  versionChangeFailed: number;
  versionChangeRequests: number;
  pulumiUpVersionChange: Timing;
  noop: Timing;
  preview: Timing;
  rollback: Timing & { failed: number; pulled: boolean };
  /** A version whose health check never passes (the sandbox's `broken` image), under load:
   * the whole command until its error, and from the new containers' start (when the
   * deadline starts counting) until then. */
  broken: { deadlineS: number; toError: Timing; fromStart: Timing; failed: number };
  /** A JavaScript program of one trivial dynamic resource (the plugin's start, nothing of
   * ours), measured in turn with the no-op deploys and previews: the reference. */
  reference: { noopUp: Timing; preview: Timing };
  /** The slowest version change's progress lines, when it took 1.3x the fastest. */
  slowest?: string[];
  /** One version change, by phase (ms). */
  breakdown: Record<string, number>;
}

/** A Kamal 2 project as a user has it, made a Pulumi project by `pulumi-kamal init`. */
function kamalProject(): { dir: string; env: NodeJS.ProcessEnv } {
  const s = sandbox();
  const dir = mkdtempSync(path.join(repoRoot, "test/.work/bench-cli-"));
  cpSync(path.join(repoRoot, "examples/kamal2/config"), path.join(dir, "config"), { recursive: true });
  cpSync(path.join(repoRoot, "examples/kamal2/.kamal"), path.join(dir, ".kamal"), { recursive: true });
  // Every request the hosts get is the app's (no host name to route by): the load needs none.
  const yml = readFileSync(path.join(dir, "config/deploy.yml"), "utf8").replace("service: hello2", "service: kpcli").replaceAll("hello2", "kpcli").replace(/^  host: .*\n/m, "");
  writeFileSync(path.join(dir, "config/deploy.yml"), yml.replaceAll("10.213.0.11", host("app1").address).replaceAll("10.213.0.12", host("app2").address));
  execFileSync("git", ["init", "-q"], { cwd: dir });
  execFileSync("git", ["-c", "user.email=bench@example.test", "-c", "user.name=bench", "commit", "-qm", "app", "--allow-empty"], { cwd: dir });
  const { PULUMI_BACKEND_URL: _b, ...env } = process.env;
  return { dir, env: { ...env, KAMAL_REGISTRY_PASSWORD: s.registry.password } };
}

/** One CLI run: its output, its time, and when each output line arrived (ms from start). */
function cli(p: { dir: string; env: NodeJS.ProcessEnv }, args: string[]): Promise<{ code: number; out: string; ms: number; lines: { ms: number; text: string }[] }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, "dist/cli/main.js"), ...args], { cwd: p.dir, env: p.env });
    let out = "";
    const lines: { ms: number; text: string }[] = [];
    const take = (d: Buffer) => {
      out += d.toString();
      for (const text of d.toString().split("\n")) if (text.trim()) lines.push({ ms: performance.now() - t0, text });
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out, ms: performance.now() - t0, lines }));
  });
}

/** `pulumi up` of the project's program with the version set by --config (no build). Not
 * spawnSync: the load generator runs in this process. */
function pulumiUp(p: { dir: string; env: NodeJS.ProcessEnv }, version: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "production", "--config", `version=${version}`], { cwd: p.dir, env: { ...p.env, PULUMI_KAMAL_BUILD: "skip" } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`pulumi up failed:\n${out}`))));
  });
}

async function ok(p: { dir: string; env: NodeJS.ProcessEnv }, args: string[]): Promise<number> {
  return (await okRun(p, args)).ms;
}

async function okRun(p: { dir: string; env: NodeJS.ProcessEnv }, args: string[]) {
  const r = await cli(p, args);
  if (r.code !== 0) throw new Error(`pulumi-kamal ${args.join(" ")} failed:\n${r.out}`);
  return r;
}

/** One trivial dynamic resource in a JavaScript program (as init writes ours), deployed. */
async function trivialReference(): Promise<PulumiProject> {
  const dir = scratchProject("bench-cli-trivial", {
    "Pulumi.yaml": "name: kp-bench-cli-trivial\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n",
    "package.json": JSON.stringify({ name: "kp-bench-cli-trivial", main: "index.js" }),
    "index.js": 'const pulumi = require("@pulumi/pulumi");\nnew pulumi.dynamic.Resource({ async create() { return { id: "x", outs: {} }; } }, "one", {});\n',
  });
  const p = new PulumiProject(dir, "bench");
  await p.ensureStack();
  if ((await p.up()).code !== 0) throw new Error("the reference program did not deploy");
  return p;
}

/**
 * Where one deploy's time goes, from the processes it starts (strace): the CLI's own start
 * until its first child, the Pulumi CLI calls before the update, the engine's start (until
 * the program runs), the program until the provider starts, the provider's life (checks,
 * the swap, state), and what follows until the CLI exits.
 */
function breakdown(p: { dir: string; env: NodeJS.ProcessEnv }, args: string[]): Record<string, number> {
  const trace = path.join(p.dir, "deploy.strace");
  const r = spawnSync("strace", ["--seccomp-bpf", "-f", "-qq", "-e", "trace=execve,exit_group", "-e", "signal=none", "-ttt", "-o", trace, process.execPath, path.join(repoRoot, "dist/cli/main.js"), ...args], { cwd: p.dir, env: p.env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`traced deploy failed:\n${r.stdout}${r.stderr}`);
  const events = readFileSync(trace, "utf8").split("\n").flatMap((l) => {
    const m = /^(\d+)\s+(\d+\.\d+) (execve|exit_group)\((.*)$/.exec(l);
    if (!m || l.includes("ENOENT")) return [];
    return [{ pid: m[1], t: Number(m[2]) * 1000, call: m[3], args: m[4] }];
  });
  rmSync(trace, { force: true });
  if (!events.length) throw new Error("the traced deploy left no trace of its processes");
  const t0 = events[0].t;
  const first = (re: RegExp) => events.find((e) => e.call === "execve" && re.test(e.args));
  const exitOf = (pid?: string) => events.find((e) => e.call === "exit_group" && e.pid === pid)?.t;
  const up = first(/"pulumi", "(up|preview)"/);
  const program = first(/@pulumi\/pulumi\/cmd\/run|cmd\/run"/) ?? first(/--monitor/);
  const provider = first(/dynamic-provider/) ?? first(/pulumi-resource-pulumi-nodejs/);
  const firstChild = events.find((e) => e.call === "execve" && e !== events[0]);
  const end = events[events.length - 1].t;
  const upEnd = exitOf(up?.pid) ?? end;
  const providerEnd = exitOf(provider?.pid) ?? upEnd;
  const round = (x: number) => Math.round(x);
  return {
    "CLI start": round((firstChild?.t ?? end) - t0),
    "Pulumi CLI calls before the update": round((up?.t ?? end) - (firstChild?.t ?? end)),
    "engine start (until the program runs)": round((program?.t ?? upEnd) - (up?.t ?? end)),
    "program: SDK, deploy.yml, secrets (until the provider starts)": round((provider?.t ?? upEnd) - (program?.t ?? upEnd)),
    "provider: checks, diffs, the swap on the hosts, state": round(providerEnd - (provider?.t ?? upEnd)),
    "engine end and after the update": round(end - providerEnd),
    total: round(end - t0),
  };
}

export async function cliPath(opts: { reps: number; underLoad: (action: () => Promise<unknown>) => Promise<{ failed: number; total: number }>; log: (m: string) => void }): Promise<CliFigures> {
  const p = kamalProject();
  const s = sandbox();
  const init = await cli(p, ["init", "--known-hosts", s.hosts[0].knownHostsPath, "--ssh-key", s.hosts[0].privateKeyPath]);
  if (init.code !== 0) throw new Error(`init failed:\n${init.out}`);
  execFileSync("pulumi", ["config", "set", "--stack", "production", "traefikImage", s.images.traefik], { cwd: p.dir, env: p.env, stdio: "ignore" });
  try {
    await ok(p, ["deploy", "--skip-push", "--version", "v1"]);
    // Version changes under load, the CLI's and `pulumi up`'s of the same program (the version
    // set by --config too) in turn: what the CLI adds, measured in the same conditions.
    const changes: number[] = [];
    const outputs: { ms: number; text: string }[][] = [];
    const ups: number[] = [];
    let failed = 0;
    let requests = 0;
    let version = "v1";
    const next = () => (version = version === "v1" ? "v2" : "v1");
    for (let i = 0; i < opts.reps; i++) {
      const v = next();
      const l = await opts.underLoad(async () => {
        const r = await okRun(p, ["deploy", "--skip-push", "--version", v]);
        changes.push(r.ms);
        outputs.push(r.lines);
      });
      const w = next();
      const m = await opts.underLoad(async () => ups.push(await pulumiUp(p, w)));
      failed += l.failed + m.failed;
      requests += l.total + m.total;
    }
    opts.log(`  pulumi-kamal deploy, version change: ${changes.map(Math.round).join(", ")} ms; pulumi up: ${ups.map(Math.round).join(", ")} ms`);
    const slow = changes.indexOf(Math.max(...changes));
    const slowest = changes[slow] > 1.3 * Math.min(...changes) ? outputs[slow].map((l) => `[${(l.ms / 1000).toFixed(2)}] ${l.text}`) : undefined;
    if (slowest) opts.log(`  the slowest version change (${Math.round(changes[slow])} ms), as it went:\n${slowest.join("\n")}`);
    // The no-op deploys and previews in turn with the reference's: the ratios compare runs
    // made in the same minutes.
    const ref = await trivialReference();
    const noops: number[] = [];
    const previews: number[] = [];
    const refUps: number[] = [];
    const refPreviews: number[] = [];
    const timed = async (f: () => Promise<{ code: number }>) => {
      const t0 = performance.now();
      if ((await f()).code !== 0) throw new Error("the reference program failed");
      return performance.now() - t0;
    };
    for (let i = 0; i < opts.reps; i++) {
      noops.push(await ok(p, ["deploy", "--skip-push", "--version", version]));
      refUps.push(await timed(() => ref.up()));
      previews.push(await ok(p, ["preview", "--skip-push", "--version", version]));
      refPreviews.push(await timed(() => ref.preview()));
    }
    await ref.destroy();
    const trace = breakdown(p, ["deploy", "--skip-push", "--version", version === "v1" ? "v2" : "v1"]);
    version = version === "v1" ? "v2" : "v1";
    // Rollback to the other version, the registry stopped: no pull.
    const rollbacks: number[] = [];
    let rollbackFailed = 0;
    let pulled = false;
    registryFault("stop");
    try {
      for (let i = 0; i < opts.reps; i++) {
        version = version === "v1" ? "v2" : "v1";
        const v = version;
        const l = await opts.underLoad(async () => {
          const r = await cli(p, ["rollback", v]);
          if (r.code !== 0) throw new Error(`rollback failed:\n${r.out}`);
          if (/pulling/.test(r.out)) pulled = true;
          rollbacks.push(r.ms);
        });
        rollbackFailed += l.failed;
      }
    } finally {
      registryFault("start");
    }
    // A broken version: deploy.yml's deploy_timeout (Kamal's default, 30 s) is the deadline;
    // the error comes within it plus 2 s of the containers' start, the old version serving.
    const toError: number[] = [];
    const fromStart: number[] = [];
    let brokenFailed = 0;
    for (let i = 0; i < Math.min(opts.reps, 2); i++) {
      const l = await opts.underLoad(async () => {
        const r = await cli(p, ["deploy", "--skip-push", "--version", "broken"]);
        if (r.code === 0 || !/did not become healthy within 30s/.test(r.out)) throw new Error(`the broken version did not fail at its health check:\n${r.out}`);
        const started = r.lines.find((l) => /starting \S+-web-broken/.test(l.text));
        if (!started) throw new Error(`no container of the broken version was started:\n${r.out}`);
        toError.push(r.ms);
        fromStart.push(r.ms - started.ms);
      });
      brokenFailed += l.failed;
    }
    return {
      broken: { deadlineS: 30, toError: timing(toError), fromStart: timing(fromStart), failed: brokenFailed },
      reference: { noopUp: timing(refUps), preview: timing(refPreviews) },
      slowest,
      versionChange: timing(changes),
      versionChangeFailed: failed,
      versionChangeRequests: requests,
      pulumiUpVersionChange: timing(ups),
      noop: timing(noops),
      preview: timing(previews),
      rollback: { ...timing(rollbacks), failed: rollbackFailed, pulled },
      breakdown: trace,
    };
  } finally {
    spawnSync("pulumi", ["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", "production"], { cwd: p.dir, env: { ...p.env, PULUMI_KAMAL_BUILD: "skip" }, stdio: "ignore" });
  }
}

/**
 * The floor of a version change on two hosts (issue 24's): on both hosts at once, over one
 * plain SSH session each: start the new container, probe it until it answers, stop the old
 * one. No proxy, no cord, no Pulumi.
 */
export async function twoHostFloor(pool: SshPool, reps: number): Promise<Timing> {
  const s = sandbox();
  const hosts = ["app1", "app2"];
  const conns = await Promise.all(hosts.map((h) => pool.connect(target(h))));
  const name = (v: string) => `floor2-${v}`;
  const start = (v: string) => shellJoin(["docker", "run", "--detach", "--name", name(v), s.images.app[v as "v1" | "v2"]]);
  for (const c of conns) {
    await c.exec(onHost(`docker rm -f ${name("v1")} ${name("v2")} >/dev/null 2>&1; true`));
    for (const v of ["v1", "v2"]) await c.exec(onHost(shellJoin(["docker", "pull", "-q", s.images.app[v as "v1" | "v2"]])));
    await c.exec(onHost(start("v1")));
  }
  const runs: number[] = [];
  let from = "v1";
  for (let i = 0; i < reps; i++) {
    const to = from === "v1" ? "v2" : "v1";
    const t0 = performance.now();
    await Promise.all(
      conns.map(async (c) => {
        await c.exec(onHost(start(to)));
        for (;;) {
          if ((await c.run(onHost(shellJoin(["docker", "exec", name(to), "/app", "probe", "http://127.0.0.1/up"])))).code === 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        await c.exec(onHost(shellJoin(["docker", "stop", "--time", "10", name(from)])));
      }),
    );
    runs.push(performance.now() - t0);
    for (const c of conns) await c.exec(onHost(shellJoin(["docker", "rm", name(from)])));
    from = to;
  }
  for (const c of conns) await c.exec(onHost(`docker rm -f ${name("v1")} ${name("v2")} >/dev/null 2>&1; true`));
  return timing(runs);
}

/** Rows of the bench's table: each figure beside its goal (issue 24's). */
export function cliReport(c: CliFigures, ref: { floorMs: number }): string[] {
  const mark = (ok: boolean) => (ok ? "met" : "**MISSED**");
  const floorGoal = ref.floorMs + 1500;
  const rows = [
    `| pulumi-kamal deploy, version change, 2 hosts (project made by init, under load) | min ${c.versionChange.min} ms, median ${c.versionChange.median} ms; ${c.versionChangeFailed} failed of ${c.versionChangeRequests} | ≤ floor + 1.5 s (${floorGoal} ms); 0 failed | ${mark(c.versionChange.median <= floorGoal && c.versionChangeFailed === 0)} |`,
    `| … beside pulumi up of the same program | median ${c.pulumiUpVersionChange.median} ms = ${(c.versionChange.median / c.pulumiUpVersionChange.median).toFixed(2)}x | ≤ 1.2x | ${mark(c.versionChange.median <= 1.2 * c.pulumiUpVersionChange.median)} |`,
    `| pulumi-kamal deploy, no change | median ${c.noop.median} ms = ${(c.noop.median / c.reference.noopUp.median).toFixed(2)}x the no-op up of a JavaScript program of one trivial dynamic resource, measured in turn (${c.reference.noopUp.median} ms) | ≤ 1.2x | ${mark(c.noop.median <= 1.2 * c.reference.noopUp.median)} |`,
    `| pulumi-kamal preview | median ${c.preview.median} ms = ${(c.preview.median / c.reference.noopUp.median).toFixed(2)}x that no-op up (its preview: ${c.reference.preview.median} ms) | ≤ 1.2x | ${mark(c.preview.median <= 1.2 * c.reference.noopUp.median)} |`,
    `| pulumi-kamal rollback, registry stopped, under load | median ${c.rollback.median} ms; ${c.rollback.failed} failed; pulled: ${c.rollback.pulled} | ≤ floor + 1.5 s; no pull | ${mark(c.rollback.median <= floorGoal && !c.rollback.pulled && c.rollback.failed === 0)} |`,
    `| pulumi-kamal deploy of a version that never passes its health check (deadline ${c.broken.deadlineS} s), under load | median ${c.broken.toError.median} ms to the error (Kamal 2: 35.4 s); ${c.broken.fromStart.median} ms from the containers' start; ${c.broken.failed} failed | ≤ deadline + 2 s from the start; 0 failed | ${mark(c.broken.fromStart.median <= (c.broken.deadlineS + 2) * 1000 && c.broken.failed === 0)} |`,
    `| one version change by phase (strace of the processes it starts) | ${Object.entries(c.breakdown).map(([k, v]) => `${k} ${v} ms`).join("; ")} | | |`,
  ];
  return rows;
}

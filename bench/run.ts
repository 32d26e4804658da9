/**
 * `npm run bench [-- --quick | --fleet | --faults]`: zero downtime and speed, measured side by
 * side on the sandbox in one run; the full run ends with the fault scenarios (test/helpers/
 * faults.ts) under load, which `--faults` runs alone (`--only=<name>,…` picks scenarios by
 * their key in FAULTS) and `--quick` leaves out. Writes bench/results/<timestamp>.json and prints a markdown table
 * with each figure next to its goal. Never fails on a missed goal: it says so.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createTraefik, traefikDirs } from "../provider/commands/traefik";
import { traefikContainer } from "../provider/config/schemas";
import { shellJoin } from "../provider/commands/shell";
import * as docker from "../provider/commands/docker";
import type { SshConnection } from "../provider/ssh/executor";
import { SshPool } from "../provider/ssh/pool";
import { startLoad, type Load, type LoadResult } from "../test/helpers/load";
import { PulumiProject, scratchProject } from "../test/helpers/pulumi";
import { FAULTS, FaultRig, failedOn, totalOn, WEB as FAULT_HOSTS, type Fault } from "../test/helpers/faults";
import { host, registryFault, repoRoot, sandbox, target } from "../test/helpers/sandbox";
import { makeCertificate } from "../test/helpers/tls";
import { buildAndDeploy } from "./build";
import { median, min, timing } from "./stats";
import { cliPath, cliReport, twoHostFloor, type CliFigures } from "./cli";

const quick = process.argv.includes("--quick");
const fleetMode = process.argv.includes("--fleet");
const faultsMode = process.argv.includes("--faults");
const REPS = quick ? 2 : 5;
const RATE = 200; // requests/s per web host, for each of keep-alive and new connections
const WEB = ["app1", "app2"];
const ALL = ["app1", "app2", "db1"];
const pool = new SshPool();
const statsFile = path.join(repoRoot, "test/.work/bench-ssh-stats.jsonl");

const log = (m: string) => console.error(`[bench] ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function cleanHosts() {
  for (const h of ALL) {
    const conn = await pool.connect(target(h));
    await conn.exec("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
  }
}

// ------------------------------------------------------------------------- load
interface PhaseLoad {
  keepAlive: LoadResult;
  newConnections: LoadResult;
}

/** Load on each host: plain HTTP, or HTTPS to a host name with a CA to trust. */
/** HTTPS load per host and kind: a new TLS connection costs this process far more CPU than a
 * plain one, and at RATE the generator itself falls behind on two cores. */
const HTTPS_RATE = 50;

function loadOn(hosts: string[], tls?: { ca: string; servername: string }): { stop: () => Promise<PhaseLoad> } {
  const url = (h: string) => `${tls ? "https" : "http"}://${host(h).address}/version`;
  const extra = tls ? { tls, headers: { host: tls.servername } } : {};
  const rate = tls ? HTTPS_RATE : RATE;
  const ka: Load[] = hosts.map((h) => startLoad({ url: url(h), rate, connections: 8, ...extra }));
  const nc: Load[] = hosts.map((h) => startLoad({ url: url(h), rate, newConnections: true, ...extra }));
  const merge = (rs: LoadResult[]): LoadResult => ({
    total: rs.reduce((n, r) => n + r.total, 0),
    ok: rs.reduce((n, r) => n + r.ok, 0),
    non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
    errors: rs.reduce((n, r) => n + r.errors, 0),
    retried: rs.reduce((n, r) => n + r.retried, 0),
    failedBy: rs.reduce<Record<string, number>>((by, r) => {
      for (const [k, n] of Object.entries(r.failedBy)) by[k] = (by[k] ?? 0) + n;
      return by;
    }, {}),
    timeouts: rs.reduce((n, r) => n + r.timeouts, 0),
    p50: Math.max(...rs.map((r) => r.p50)),
    p99: Math.max(...rs.map((r) => r.p99)),
    samples: rs.flatMap((r) => r.samples).slice(0, 5),
    skipped: rs.reduce((n, r) => n + r.skipped, 0),
  });
  return {
    stop: async () => ({ keepAlive: merge(await Promise.all(ka.map((l) => l.stop()))), newConnections: merge(await Promise.all(nc.map((l) => l.stop()))) }),
  };
}

async function underLoad(hosts: string[], action: () => Promise<unknown>, tls?: { ca: string; servername: string }): Promise<PhaseLoad> {
  const load = loadOn(hosts, tls);
  await sleep(1000);
  await action();
  await sleep(1500);
  return load.stop();
}

// ------------------------------------------------------------------------- ours (Pulumi)
async function benchProject(name: string): Promise<PulumiProject> {
  const dir = scratchProject(name, {
    "Pulumi.yaml": `name: kp-${name}\nruntime: nodejs\n`,
    "package.json": JSON.stringify({ name: `kp-${name}`, main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/bench"))};\n`,
  });
  const p = new PulumiProject(dir, "bench");
  await p.ensureStack();
  return p;
}

async function set(p: PulumiProject, key: string, value: string, secret = false) {
  const r = await p.run(["config", "set", ...(secret ? ["--secret"] : []), "--stack", p.stack, key, value]);
  if (r.code !== 0) throw new Error(r.stderr);
}

/** Extra `pulumi up` flags: the fleet runs lift the engine's default parallelism (4 per
 * core: 8 here), which would otherwise update a 10-host role in two waves. */
let upFlags: string[] = [];

async function timedUp(p: PulumiProject, expectOk = true): Promise<{ ms: number; out: string; code: number }> {
  const t0 = performance.now();
  const r = await p.up(upFlags);
  const ms = performance.now() - t0;
  if (expectOk && r.code !== 0) throw new Error(`pulumi up failed:\n${r.stdout}\n${r.stderr}`);
  return { ms, out: r.stdout + r.stderr, code: r.code };
}

/** Peak RSS (MiB) of the provider and program processes while `fn` runs: the kernel's
 * high-water mark (VmHWM) of each such process, read while it lives. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; providerMiB: number; programMiB: number; cpu: CpuUse }> {
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
interface CpuUse {
  machineBusy: number;
  wallS: number;
  providerS: number;
  programS: number;
  engineS: number;
}
const HZ = 100; // USER_HZ: the unit of /proc/<pid>/stat and /proc/stat on Linux

function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + cpu[4];
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** utime + stime of a process and its reaped children, in ticks. */
function processTicks(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return undefined;
  }
}

/** SSH counters per host of the last provider process that wrote stats. */
function sshStats(): Record<string, { connections: number; commands: number; uploads: number; bytesSent: number; bytesReceived: number }> {
  const lines = readFileSync(statsFile, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const lastPid = lines[lines.length - 1].pid;
  const mine = lines.filter((l) => l.pid === lastPid);
  return mine[mine.length - 1].hosts;
}

/** A deployed reference program for the preview comparison. */
async function referenceProject(name: string, program: string): Promise<PulumiProject> {
  const p = new PulumiProject(
    scratchProject(name, { "Pulumi.yaml": `name: kp-${name}\nruntime: nodejs\n`, "package.json": JSON.stringify({ name, main: "index.ts" }), "index.ts": program }),
    "bench",
  );
  await p.ensureStack();
  await p.up();
  return p;
}

/** `pulumi preview` and (unless told not to) a no-op `pulumi up`, REPS times each. */
async function previewAndNoop(p: PulumiProject, noop = true) {
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

// ------------------------------------------------------------------------- naive baseline
/** What a plain remote command (or a delete-before-replace container resource) does:
 * remove the old container, run the new one. Same labels and health check as ours. */
async function naiveDeploy(hosts: string[], version: string, token: string): Promise<void> {
  await Promise.all(
    hosts.map(async (h) => {
      const conn = await pool.connect(target(h));
      const labels = [
        "traefik.enable=true",
        "traefik.http.routers.naive-web.rule=PathPrefix(`/`)",
        "traefik.http.routers.naive-web.entrypoints=http",
        "traefik.http.services.naive-web.loadbalancer.server.port=80",
      ].flatMap((l) => ["--label", l]);
      await conn.exec(
        `docker rm -f naive-web >/dev/null 2>&1; ${shellJoin([
          "docker", "run", "--detach", "--name", "naive-web", "--env", `TOKEN=${token}`, ...labels,
          "--health-cmd", "/app probe http://127.0.0.1/up", "--health-interval", "1s",
          `${sandbox().images.app.v1.replace(/:v1$/, "")}:${version}`,
        ])}`,
      );
    }),
  );
  // A plain command returns at once; the outage lasts until the new container is healthy.
  await Promise.all(hosts.map(async (h) => waitHealthy(await pool.connect(target(h)), "naive-web", 15_000)));
}

async function waitHealthy(conn: SshConnection, name: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const [, health] = (await conn.run(docker.containerState(name))).stdout.trim().split(" ");
    if (health === "healthy") return true;
    await sleep(100);
  }
  return false;
}

async function startTraefikDirect(hosts: string[]) {
  for (const h of hosts) {
    const conn = await pool.connect(target(h));
    await login(conn);
    const cfg = traefikContainer.parse({ hostName: h, connection: { host: host(h).address }, image: sandbox().images.traefik });
    await conn.exec(docker.makeDirectories(["/root/.kamal/proxy/traefik"]));
    await conn.exec(createTraefik(cfg, { name: "traefik", dirs: traefikDirs("/root") }));
    await conn.exec(docker.startContainer("traefik"));
  }
}

async function login(conn: SshConnection) {
  const r = sandbox().registry;
  await conn.exec(docker.dockerLogin(r.address, r.username), { stdin: r.password, secrets: [r.password] });
}

// ------------------------------------------------------------------------- floor
/** The raw Docker sequence of one swap on one host over one SSH connection: start new, wait
 * healthy, make old unhealthy (cut its cord), stop old. */
async function floorSwap(conn: SshConnection, from: string, to: string, image: string): Promise<number> {
  const cord = (v: string) => `/root/.kamal/floor-cords/${v}`;
  const t0 = performance.now();
  await conn.exec(docker.tieCord(cord(to)));
  await conn.exec(
    shellJoin([
      "docker", "run", "--detach", "--name", `floor-${to}`, "--volume", `${cord(to)}:/tmp/kamal-cord`,
      "--label", "traefik.enable=true", "--label", "traefik.http.routers.floor.rule=PathPrefix(`/`)",
      "--label", "traefik.http.services.floor.loadbalancer.server.port=80",
      "--health-cmd", "(/app probe http://127.0.0.1/up) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)",
      "--health-interval", "1s", "--health-retries", "3", image,
    ]),
  );
  await waitHealthy(conn, `floor-${to}`, 30_000);
  await conn.exec(docker.cutCord(cord(from)));
  for (;;) {
    const [, health] = (await conn.run(docker.containerState(`floor-${from}`))).stdout.trim().split(" ");
    if (health === "unhealthy") break;
    await sleep(100);
  }
  await conn.exec(docker.stopContainer(`floor-${from}`, 10));
  const ms = performance.now() - t0;
  await conn.exec(docker.removeContainers([`floor-${from}`]));
  return ms;
}

// ------------------------------------------------------------------------- fleet
const FLEET_SIZES = [1, 3, 10];
const FLEET_RATE = 40; // requests/s per host, for each of keep-alive and new connections

interface FleetFigures {
  hosts: number;
  /** The raw Docker sequence of a swap (run new, probe it, stop and remove old) on every
   * host at once over plain SSH, no Pulumi: what this machine allows. */
  floor: ReturnType<typeof timing>;
  /** CPU during the first version change: machine busy fraction, CPU seconds per process. */
  cpu: CpuUse;
  /** No-op preview and up of a program with as many trivial dynamic resources (no SSH):
   * what the Pulumi engine alone costs at this size. */
  engineFloor: { resources: number; preview: ReturnType<typeof timing>; noopUp: ReturnType<typeof timing> };
  swapAllAtOnce: ReturnType<typeof timing>;
  swapBootLimit1: number;
  failed: number;
  requests: number;
  sshPerHost: { connections: number[]; commands: number[] };
  noopPreview: ReturnType<typeof timing>;
  noopUp: ReturnType<typeof timing>;
  memory: { providerPeakRssMiB: number; programPeakRssMiB: number };
  brokenImage: { msToError: number; deadlineSeconds: number };
}

/** One fleet size: N app hosts in the sandbox, Traefik and a web role on every one. */
async function fleetSize(n: number): Promise<FleetFigures> {
  log(`fleet: ${n} app host(s)`);
  execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "up", "--hosts", String(n)], { stdio: "inherit" });
  const hosts = Array.from({ length: n }, (_, i) => `app${i + 1}`);
  const fresh = JSON.parse(execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "status", "--json"], { encoding: "utf8" }));
  Object.assign(sandbox(), fresh);
  pool.closeAll();
  for (const h of hosts) {
    const conn = await pool.connect(target(h));
    await conn.exec("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
  }
  const floor = await fleetFloor(hosts);
  for (const h of hosts) await (await pool.connect(target(h))).exec("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
  const p = await benchProject(`fleet-${n}`);
  await set(p, "hosts", JSON.stringify(hosts));
  await set(p, "version", "v1");
  await set(p, "token", "t", true);
  await set(p, "deadline", "10");
  await timedUp(p);
  const loadAll = () => {
    const ls = hosts.flatMap((h) => [
      startLoad({ url: `http://${host(h).address}/version`, rate: FLEET_RATE, connections: 2 }),
      startLoad({ url: `http://${host(h).address}/version`, rate: FLEET_RATE, newConnections: true }),
    ]);
    return async () => Promise.all(ls.map((l) => l.stop()));
  };
  const swaps: number[] = [];
  let failed = 0;
  let requests = 0;
  let version = "v1";
  let memory = { providerPeakRssMiB: 0, programPeakRssMiB: 0 };
  let cpu: CpuUse | undefined;
  let sshPerHost = { connections: [] as number[], commands: [] as number[] };
  for (let i = 0; i < REPS; i++) {
    version = version === "v1" ? "v2" : "v1";
    await set(p, "version", version);
    const stop = loadAll();
    await sleep(500);
    rmSync(statsFile, { force: true });
    const m = await peakRss(() => timedUp(p));
    await sleep(500);
    const loads = await stop();
    swaps.push(m.result.ms);
    failed += loads.reduce((k, l) => k + l.non2xx + l.errors + l.timeouts, 0);
    requests += loads.reduce((k, l) => k + l.total, 0);
    if (i === 0) {
      memory = { providerPeakRssMiB: m.providerMiB, programPeakRssMiB: m.programMiB };
      cpu = m.cpu;
      const stats = Object.values(sshStats());
      sshPerHost = { connections: stats.map((v) => v.connections), commands: stats.map((v) => v.commands) };
    }
  }
  await set(p, "bootLimit", "1");
  version = version === "v1" ? "v2" : "v1";
  await set(p, "version", version);
  const one = await timedUp(p);
  await p.run(["config", "rm", "--stack", p.stack, "bootLimit"]);
  const noop = await previewAndNoop(p);
  const engineFloor = await engineFloorOf(p, n);
  await set(p, "version", "broken");
  const broken = await timedUp(p, false);
  await set(p, "version", "v1");
  if ((await p.destroy()).code !== 0) throw new Error("destroy failed");
  return {
    hosts: n,
    floor,
    cpu: cpu!,
    engineFloor,
    swapAllAtOnce: timing(swaps),
    swapBootLimit1: Math.round(one.ms),
    failed,
    requests,
    sshPerHost,
    noopPreview: noop.preview,
    noopUp: noop.noopUp!,
    memory,
    brokenImage: { msToError: Math.round(broken.ms), deadlineSeconds: 10 },
  };
}

/** The raw swap on every host at once, under the same load, REPS times: `docker run` of
 * the other version, `docker exec` of the health probe until it answers, `docker stop` and
 * `docker rm` of the old one; one SSH connection per host, images pulled beforehand. */
async function fleetFloor(hosts: string[]): Promise<ReturnType<typeof timing>> {
  log(`floor: raw docker swap on ${hosts.length} host(s) at once`);
  const img = (v: string) => sandbox().images.app[v as "v1" | "v2"];
  const run = (v: string) => shellJoin(["docker", "run", "--detach", "--name", `floor-${v}`, img(v)]);
  const probe = async (conn: SshConnection, v: string) => {
    for (const t0 = Date.now(); Date.now() - t0 < 30_000; await sleep(100)) {
      if ((await conn.run(docker.execInContainer(`floor-${v}`, "/app probe http://127.0.0.1/up"))).code === 0) return;
    }
    throw new Error(`floor-${v} did not answer`);
  };
  const conns = await Promise.all(hosts.map((h) => pool.connect(target(h))));
  await startTraefikDirect(hosts);
  await Promise.all(
    conns.map(async (c) => {
      await login(c);
      for (const v of ["v1", "v2"]) await c.exec(shellJoin(["docker", "pull", "-q", img(v)]));
      await c.exec(run("v1"));
      await probe(c, "v1");
    }),
  );
  const stop = (() => {
    const ls = hosts.flatMap((h) => [
      startLoad({ url: `http://${host(h).address}/version`, rate: FLEET_RATE, connections: 2 }),
      startLoad({ url: `http://${host(h).address}/version`, rate: FLEET_RATE, newConnections: true }),
    ]);
    return () => Promise.all(ls.map((l) => l.stop()));
  })();
  const times: number[] = [];
  let from = "v1";
  try {
    for (let i = 0; i < REPS; i++) {
      const to = from === "v1" ? "v2" : "v1";
      const t0 = performance.now();
      await Promise.all(
        conns.map(async (c) => {
          await c.exec(run(to));
          await probe(c, to);
          await c.exec(docker.stopContainer(`floor-${from}`, 10));
          await c.exec(docker.removeContainers([`floor-${from}`]));
        }),
      );
      times.push(performance.now() - t0);
      from = to;
    }
  } finally {
    await stop();
  }
  return timing(times);
}

/** No-op preview and up of a program with as many trivial dynamic resources (and
 * components) as the deployed stack holds: the engine's own cost at this fleet size. */
async function engineFloorOf(p: PulumiProject, n: number): Promise<FleetFigures["engineFloor"]> {
  const exported = await p.run(["stack", "export", "--stack", p.stack]);
  const resources = (JSON.parse(exported.stdout).deployment.resources as { type: string }[]).filter((r) => r.type.startsWith("pulumi-nodejs:dynamic")).length;
  log(`engine floor: ${resources} trivial dynamic resources`);
  const ref = await referenceProject(
    `fleet-engine-${n}`,
    [
      'import * as pulumi from "@pulumi/pulumi";',
      'const p: pulumi.dynamic.ResourceProvider = { async create() { return { id: "x", outs: {} }; } };',
      `for (let i = 0; i < ${resources}; i++) new pulumi.dynamic.Resource(p, \`r\${i}\`, { i });`,
      "",
    ].join("\n"),
  );
  const r = await previewAndNoop(ref);
  await ref.destroy();
  return { resources, preview: r.preview, noopUp: r.noopUp! };
}

async function fleet() {
  const started = Date.now();
  upFlags = ["--parallel", "64"];
  mkdirSync(path.dirname(statsFile), { recursive: true });
  process.env.KAMAL_SSH_STATS_FILE = statsFile;
  const sizes: FleetFigures[] = [];
  try {
    for (const n of FLEET_SIZES) sizes.push(await fleetSize(n));
  } finally {
    // Back to the sandbox the tests use.
    execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "up"], { stdio: "inherit" });
  }
  const machine = `${execFileSync("nproc", { encoding: "utf8" }).trim()} cores, ${Math.round(Number(execFileSync("awk", ["/MemTotal/ {print $2}", "/proc/meminfo"], { encoding: "utf8" })) / 1024 / 1024)} GiB`;
  const results = { fleet: sizes, reps: REPS, ratePerHost: FLEET_RATE, machine, durationSeconds: Math.round((Date.now() - started) / 1000) };
  const table = fleetReport(results);
  const dir = path.join(repoRoot, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `fleet-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ ...results, table }, null, 2) + "\n");
  console.log(table);
  console.log(`\nResults: ${path.relative(repoRoot, file)}`);
  pool.closeAll();
}

function fleetReport(r: { fleet: FleetFigures[]; machine: string; durationSeconds: number; reps: number }): string {
  const mark = (ok: boolean) => (ok ? "met" : "**MISSED**");
  const one = r.fleet.find((f) => f.hosts === 1)!;
  const rows = ["| hosts | measure | value | goal | |", "|---|---|---|---|---|"];
  for (const f of r.fleet) {
    const swapRatio = f.swapAllAtOnce.median / one.swapAllAtOnce.median;
    const pr = f.noopPreview.median / one.noopPreview.median;
    const ur = f.noopUp.median / one.noopUp.median;
    const conns = [...new Set(f.sshPerHost.connections)].join("/");
    const cmds = `${Math.min(...f.sshPerHost.commands)}–${Math.max(...f.sshPerHost.commands)}`;
    rows.push(`| ${f.hosts} | version change, all hosts at once (median of ${r.reps}) | ${f.swapAllAtOnce.median} ms (${(swapRatio).toFixed(2)}x one host) | ${f.hosts === 10 ? "≤ 1.3x one host" : ""} | ${f.hosts === 10 ? mark(swapRatio <= 1.3) : ""} |`);
    const floorRatio = f.floor.median / one.floor.median;
    rows.push(`| ${f.hosts} | floor: raw docker swap (run, probe, stop, rm), all hosts at once, no Pulumi | ${f.floor.median} ms (${floorRatio.toFixed(2)}x one host) | | |`);
    rows.push(`| ${f.hosts} | CPU during a version change: machine busy; provider / program / engine CPU | ${Math.round(f.cpu.machineBusy * 100)}% of ${f.cpu.wallS} s; ${f.cpu.providerS} / ${f.cpu.programS} / ${f.cpu.engineS} s | | |`);
    rows.push(`| ${f.hosts} | version change, bootLimit 1 | ${f.swapBootLimit1} ms | | |`);
    rows.push(`| ${f.hosts} | failed requests during the swaps, load on every host | ${f.failed} of ${f.requests} | 0 | ${mark(f.failed === 0)} |`);
    rows.push(`| ${f.hosts} | SSH per host per up: connections, commands | ${conns}, ${cmds} | 1, constant | ${mark(f.sshPerHost.connections.every((c) => c <= 1))} |`);
    rows.push(`| ${f.hosts} | no-op preview / no-op up | ${f.noopPreview.median} / ${f.noopUp.median} ms (${pr.toFixed(2)}x / ${ur.toFixed(2)}x one host) | ${f.hosts === 10 ? "≤ 1.2x one host" : ""} | ${f.hosts === 10 ? mark(pr <= 1.2 && ur <= 1.2) : ""} |`);
    const efp = f.engineFloor.preview.median / one.engineFloor.preview.median;
    const efu = f.engineFloor.noopUp.median / one.engineFloor.noopUp.median;
    rows.push(`| ${f.hosts} | engine alone: ${f.engineFloor.resources} trivial dynamic resources, no-op preview / up | ${f.engineFloor.preview.median} / ${f.engineFloor.noopUp.median} ms (${efp.toFixed(2)}x / ${efu.toFixed(2)}x) | | |`);
    rows.push(`| ${f.hosts} | peak RSS provider / program | ${f.memory.providerPeakRssMiB} / ${f.memory.programPeakRssMiB} MiB | | |`);
    rows.push(`| ${f.hosts} | broken image: up to the error | ${f.brokenImage.msToError} ms (deadline ${f.brokenImage.deadlineSeconds} s) | deadline + engine | |`);
  }
  rows.push(`| | machine; bench duration | ${r.machine}; ${r.durationSeconds} s | | |`);
  return rows.join("\n");
}

// ------------------------------------------------------------------------- faults
interface FaultFigures {
  name: string;
  title: string;
  /** "completed", or the first error line of the faulted `up`. */
  outcome: string;
  hosts: { host: string; failed: number; total: number; counted: boolean }[];
  converge: { ok: boolean; failed: number; total: number };
  seconds: number;
}

/** The first error the user saw, without Pulumi's own summary lines. */
function firstError(out: string): string {
  const line = out.split("\n").map((l) => l.trim()).find((l) => /^error: /.test(l) && !/update failed|preview failed/.test(l));
  return (line ?? "failed").replace(/^error: /, "").slice(0, 220);
}

/** Every fault scenario of faults.test.ts, under the same load, one after the other. */
async function faultPhases(): Promise<FaultFigures[]> {
  const rig = new FaultRig("bench-faults");
  const figures: FaultFigures[] = [];
  await rig.setup();
  try {
    const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");
    for (const [name, f] of (Object.entries(FAULTS) as [string, Fault][]).filter(([n]) => !only || only.includes(n))) {
      log(`fault: ${f.title}`);
      const o = await rig.play(f);
      const hosts = FAULT_HOSTS.map((h) => ({ host: h, failed: failedOn(o.load, h, f.routeGone?.includes(h)), total: totalOn(o.load, h), counted: !f.cutOff?.includes(h) }));
      const converge = {
        ok: o.converge.up.code === 0,
        failed: FAULT_HOSTS.reduce((n, h) => n + failedOn(o.converge.load, h, f.routeGone?.includes(h)), 0),
        total: FAULT_HOSTS.reduce((n, h) => n + totalOn(o.converge.load, h), 0),
      };
      figures.push({ name, title: f.title, outcome: o.up.code === 0 ? "completed" : firstError(o.out), hosts, converge, seconds: o.seconds });
      log(`  ${hosts.map((x) => `${x.host} ${x.failed}/${x.total}${x.counted ? "" : " (cut off)"}`).join(", ")}; converge ${converge.ok ? "ok" : "FAILED"} ${converge.failed}/${converge.total}`);
    }
  } finally {
    await rig.teardown();
  }
  return figures;
}

function faultsReport(figures: FaultFigures[]): string {
  const mark = (ok: boolean) => (ok ? "met" : "**MISSED**");
  const rows = ["| fault (under load on both web hosts) | the faulted `pulumi up` | failed requests, hosts that stayed reachable | the next `up` | goal | |", "|---|---|---|---|---|---|"];
  for (const f of figures) {
    const counted = f.hosts.filter((h) => h.counted);
    const failed = counted.reduce((n, h) => n + h.failed, 0);
    const cut = f.hosts.filter((h) => !h.counted).map((h) => `; ${h.host} cut off: ${h.failed} of ${h.total} failed`).join("");
    const reachable = `${failed} of ${counted.reduce((n, h) => n + h.total, 0)}${cut}`;
    const next = `${f.converge.ok ? "converged" : "**failed**"}, ${f.converge.failed} of ${f.converge.total} failed`;
    const ok = f.converge.ok && f.converge.failed === 0 && failed === 0;
    const goal = "0 failed; converges, 0 failed";
    rows.push(`| ${f.title} | ${f.outcome.replace(/\|/g, "\\|")} | ${reachable} | ${next} | ${goal} | ${mark(ok)} |`);
  }
  return rows.join("\n");
}

async function faultsOnly() {
  const started = Date.now();
  const figures = await faultPhases();
  const table = faultsReport(figures);
  const dir = path.join(repoRoot, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `faults-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ faults: figures, durationSeconds: Math.round((Date.now() - started) / 1000), table }, null, 2) + "\n");
  console.log(table);
  console.log(`\nResults: ${path.relative(repoRoot, file)}`);
  pool.closeAll();
}

// ------------------------------------------------------------------------- main
async function main() {
  const started = Date.now();
  mkdirSync(path.dirname(statsFile), { recursive: true });
  rmSync(statsFile, { force: true });
  process.env.KAMAL_SSH_STATS_FILE = statsFile;
  await cleanHosts();
  const s = sandbox();
  const results: Record<string, unknown> = { quick, reps: REPS, ratePerHost: { keepAlive: RATE, newConnections: RATE }, startedAt: new Date(started).toISOString() };

  // 1. Zero downtime, ours: two web hosts behind their Traefiks.
  log("zero downtime: ours (pulumi up) on app1+app2");
  const ours = await benchProject("bench-ours");
  await set(ours, "hosts", JSON.stringify(WEB));
  await set(ours, "version", "v1");
  await set(ours, "token", "first", true);
  await set(ours, "deadline", "10");
  await timedUp(ours);
  const zd: Record<string, Record<string, PhaseLoad & { ok: boolean }>> = { ours: {}, naive: {} };
  const phase = async (who: "ours" | "naive", name: string, action: () => Promise<boolean>, tls?: { ca: string; servername: string }) => {
    let ok = false;
    const load = await underLoad(WEB, async () => (ok = await action()), tls);
    zd[who][name] = { ...load, ok };
    log(`  ${who} ${name}: ${load.keepAlive.total + load.newConnections.total} requests, ${failedOf(load)} failed`);
  };
  let httpSwapMs = 0;
  await phase("ours", "swap", async () => {
    await set(ours, "version", "v2");
    const r = await timedUp(ours);
    httpSwapMs = r.ms;
    return r.code === 0;
  });
  registryFault("stop");
  let rollbackMs = 0;
  let rollbackPulled = "";
  try {
    await phase("ours", "rollback", async () => {
      await set(ours, "version", "v1");
      const r = await timedUp(ours);
      rollbackMs = r.ms;
      rollbackPulled = (await ours.run(["stack", "output", "pulled", "--json", "--stack", ours.stack])).stdout.trim();
      return r.code === 0;
    });
  } finally {
    registryFault("start");
  }
  await phase("ours", "failed deploy", async () => (await set(ours, "version", "broken"), (await timedUp(ours, false)).code !== 0));
  await set(ours, "version", "v1");
  await phase("ours", "env-only redeploy", async () => (await set(ours, "token", "second", true), (await timedUp(ours)).code === 0));
  // A Traefik change: the port is handed over through a bridge Traefik (0 ms closed), or,
  // where iptables cannot be changed, closed while Traefik restarts.
  let traefikGapMs: number[] = [];
  await phase("ours", "Traefik restart (args change)", async () => {
    await set(ours, "traefikArgs", JSON.stringify({ accesslog: true }));
    const r = await timedUp(ours);
    traefikGapMs = [...r.out.matchAll(/Traefik replaced(?:; no connection was refused| \(port closed for ~(\d+)ms\))/g)].map((m) => Number(m[1] ?? 0));
    return r.code === 0;
  });
  results.traefikRestart = { portClosedMs: traefikGapMs };
  if ((await ours.destroy()).code !== 0) throw new Error("destroy failed");

  // 1a. The same swap over HTTPS (a certificate of the app's own on both hosts), with HTTPS
  // load: keep-alive and new TLS connections.
  log("zero downtime: ours over HTTPS on app1+app2");
  const tls = makeCertificate(path.join(repoRoot, "test/.work/bench-tls"), "bench.kp.test", "bench", 2);
  const https = await benchProject("bench-https");
  await set(https, "hosts", JSON.stringify(WEB));
  await set(https, "version", "v1");
  await set(https, "token", "first", true);
  await set(https, "deadline", "10");
  await set(https, "sslHost", tls.name);
  await set(https, "certFile", tls.certFile);
  await set(https, "keyFile", tls.keyFile);
  await timedUp(https);
  let httpsSwapMs = 0;
  await phase("ours", "swap over HTTPS", async () => {
    await set(https, "version", "v2");
    const r = await timedUp(https);
    httpsSwapMs = r.ms;
    return r.code === 0;
  }, { ca: tls.ca, servername: tls.name });
  results.swapTime = { httpMs: Math.round(httpSwapMs), httpsMs: Math.round(httpsSwapMs) };
  if ((await https.destroy()).code !== 0) throw new Error("destroy failed");

  // 1b. The naive baseline on the same hosts, with the same Traefik.
  log("zero downtime: naive (stop old, start new) on app1+app2");
  await cleanHosts();
  await startTraefikDirect(WEB);
  await naiveDeploy(WEB, "v1", "first");
  await phase("naive", "swap", async () => (await naiveDeploy(WEB, "v2", "first"), true));
  await phase("naive", "rollback", async () => (await naiveDeploy(WEB, "v1", "first"), true));
  await phase("naive", "failed deploy", async () => (await naiveDeploy(WEB, "broken", "first").catch(() => undefined), true));
  await naiveDeploy(WEB, "v1", "first");
  await phase("naive", "env-only redeploy", async () => (await naiveDeploy(WEB, "v1", "second"), true));
  results.zeroDowntime = zd;
  await cleanHosts();

  // 2. Deploy speed on 1, 2, 3 hosts; the engine's fixed cost; SSH cost; memory.
  const speed: Record<string, unknown> = {};
  let ssh: unknown;
  let memory: unknown;
  for (const n of [1, 2, 3]) {
    log(`deploy speed: ${n} host(s)`);
    const p = await benchProject(`bench-${n}`);
    await set(p, "hosts", JSON.stringify(ALL.slice(0, n)));
    await set(p, "version", "v1");
    await set(p, "token", "t", true);
    await timedUp(p);
    const ups: number[] = [];
    const noops: number[] = [];
    let version = "v1";
    for (let i = 0; i < REPS; i++) {
      version = version === "v1" ? "v2" : "v1";
      await set(p, "version", version);
      if (n === 3 && i === 0) {
        const m = await peakRss(() => timedUp(p));
        ups.push(m.result.ms);
        memory = { providerPeakRssMiB: m.providerMiB, programPeakRssMiB: m.programMiB };
        const stats = sshStats();
        ssh = Object.fromEntries(Object.entries(stats).map(([k, v]) => [k.replace(/^root@/, ""), v]));
      } else {
        ups.push((await timedUp(p)).ms);
      }
      const t0 = performance.now();
      await p.up();
      noops.push(performance.now() - t0);
    }
    speed[`${n}`] = { up: timing(ups), noop: timing(noops), ours: Math.round(median(ups) - median(noops)) };
    if (n === 3) {
      // 4. Preview and no-op up with the stack deployed vs an empty program, and, to show
      // where the difference goes, one trivial dynamic resource (whose only cost over the
      // empty program is starting Pulumi's Node.js dynamic-provider plugin).
      log("preview vs empty program");
      const empty = await referenceProject("bench-empty", "export {};\n");
      const one = await referenceProject(
        "bench-one-dynamic",
        [
          'import * as pulumi from "@pulumi/pulumi";',
          'const p: pulumi.dynamic.ResourceProvider = { async create() { return { id: "x", outs: {} }; } };',
          'new pulumi.dynamic.Resource(p, "one", {});',
          "",
        ].join("\n"),
      );
      results.preview = {
        deployed: { preview: (await previewAndNoop(p, false)).preview, noopUp: (speed["3"] as { noop: unknown }).noop },
        empty: await previewAndNoop(empty),
        oneTrivialDynamicResource: await previewAndNoop(one),
      };
      await one.destroy();
    }
    await p.destroy();
  }
  results.deploySpeed = speed;
  results.ssh = ssh;
  results.memory = memory;

  // 2a'. The path Kamal users take: pulumi-kamal on a project made by init, under load.
  log("the CLI path: pulumi-kamal deploy, no-op, preview, rollback on a project made by init (app1+app2)");
  await cleanHosts();
  const cliFloor = await twoHostFloor(pool, REPS);
  results.cli = {
    ...(await cliPath({
      // Three at least: a median of two is a mean, and one slow run moves it.
      reps: Math.max(3, REPS),
      log,
      underLoad: async (action) => {
        const l = await underLoad(WEB, action);
        return { failed: failedOf(l), total: l.keepAlive.total + l.newConnections.total };
      },
    })),
    twoHostFloor: cliFloor,
  };
  await cleanHosts();

  // 2a. Build and deploy in one update: a one-line change to the app (a new commit), with
  // the builder's cache warm, and cold (emptied before each build), beside the deploy alone.
  log("build + deploy: a one-line change on app1+app2, warm and cold builder cache");
  results.build = { ...(await buildAndDeploy({ reps: REPS, timedUp, set })), deployAlone: (speed["2"] as { up: unknown }).up };

  // 2b. The floor: the raw Docker sequence on one host over one connection.
  log("floor: raw docker sequence on app1");
  await cleanHosts();
  await startTraefikDirect(["app1"]);
  const conn = await pool.connect(target("app1"));
  const img = (v: string) => s.images.app[v as "v1" | "v2"];
  await conn.exec(docker.tieCord("/root/.kamal/floor-cords/v1"));
  await conn.exec(shellJoin(["docker", "pull", "-q", img("v1")]));
  await conn.exec(shellJoin(["docker", "pull", "-q", img("v2")]));
  await conn.exec(
    shellJoin([
      "docker", "run", "--detach", "--name", "floor-v1", "--volume", "/root/.kamal/floor-cords/v1:/tmp/kamal-cord",
      "--health-cmd", "(/app probe http://127.0.0.1/up) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)",
      "--health-interval", "1s", "--health-retries", "3", img("v1"),
    ]),
  );
  await waitHealthy(conn, "floor-v1", 30_000);
  const floors: number[] = [];
  let from = "v1";
  for (let i = 0; i < REPS; i++) {
    const to = from === "v1" ? "v2" : "v1";
    floors.push(await floorSwap(conn, from, to, img(to)));
    from = to;
  }
  results.floor = timing(floors);
  results.rollback = { ms: Math.round(rollbackMs), pulled: rollbackPulled, registryStopped: true };
  await cleanHosts();

  // 3. Faults under load (not with --quick).
  if (!quick) {
    results.faults = await faultPhases();
    await cleanHosts();
  }
  results.durationSeconds = Math.round((Date.now() - started) / 1000);

  const table = report(results) + (results.faults ? `\n\n${faultsReport(results.faults as FaultFigures[])}` : "");
  const dir = path.join(repoRoot, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ ...results, table }, null, 2) + "\n");
  console.log(table);
  console.log(`\nResults: ${path.relative(repoRoot, file)}`);
  pool.closeAll();
}

function failedOf(l: PhaseLoad): number {
  return [l.keepAlive, l.newConnections].reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
}

/** The markdown table, each figure beside its goal. */
function report(r: Record<string, unknown>): string {
  const zd = r.zeroDowntime as Record<string, Record<string, PhaseLoad>>;
  const speed = r.deploySpeed as Record<string, { up: { min: number; median: number }; noop: { min: number; median: number }; ours: number }>;
  const floor = r.floor as { min: number; median: number };
  type PN = { preview: { median: number }; noopUp: { median: number } };
  const preview = r.preview as { deployed: PN; empty: PN; oneTrivialDynamicResource: PN };
  const rows: string[] = [];
  const mark = (ok: boolean) => (ok ? "met" : "**MISSED**");
  rows.push("| measure | value | goal | |", "|---|---|---|---|");
  for (const phase of Object.keys(zd.ours)) {
    for (const who of ["ours", "naive"] as const) {
      const l = zd[who][phase];
      if (!l) continue;
      const f = failedOf(l);
      const total = l.keepAlive.total + l.newConnections.total;
      const lat = `p50 ${Math.max(l.keepAlive.p50, l.newConnections.p50)} ms, p99 ${Math.max(l.keepAlive.p99, l.newConnections.p99)} ms`;
      const restart = phase.startsWith("Traefik");
      const skipped = l.keepAlive.skipped + l.newConnections.skipped;
      const gap = (skipped ? `; ${skipped} slots skipped (load generator behind)` : "") + (restart ? `; port closed ${(r.traefikRestart as { portClosedMs: number[] }).portClosedMs.join(", ")} ms per host` : "");
      rows.push(
        `| ${phase}: ${who === "ours" ? "pulumi up" : "naive stop/start"} | ${f} failed of ${total} (keep-alive ${l.keepAlive.non2xx + l.keepAlive.errors + l.keepAlive.timeouts}/${l.keepAlive.total}, new conn ${l.newConnections.non2xx + l.newConnections.errors + l.newConnections.timeouts}/${l.newConnections.total}); ${lat}${gap} | ${who === "ours" ? "0 failed" : "(baseline)"} | ${who === "ours" ? mark(f === 0) : ""} |`,
      );
    }
  }
  const st = r.swapTime as { httpMs: number; httpsMs: number } | undefined;
  if (st) rows.push(`| pulumi up, version change on 2 hosts under load: HTTP (${RATE} req/s per host and kind) / HTTPS (${HTTPS_RATE}) | ${st.httpMs} / ${st.httpsMs} ms | | |`);
  const s1 = speed["1"];
  const ratioFloor = s1.ours / floor.median;
  const ratio31 = speed["3"].up.median / s1.up.median;
  for (const n of ["1", "2", "3"]) {
    rows.push(`| pulumi up, version change, ${n} host(s) | min ${speed[n].up.min} ms, median ${speed[n].up.median} ms | | |`);
  }
  rows.push(`| no-op pulumi up (engine fixed cost) | median ${s1.noop.median} ms | | |`);
  rows.push(`| floor: raw docker swap, 1 host, 1 connection | min ${floor.min} ms, median ${floor.median} ms | | |`);
  rows.push(`| ours / floor (1 host, up − no-op) | ${ratioFloor.toFixed(2)}x (${s1.ours} / ${floor.median} ms) | ≤ 1.3x | ${mark(ratioFloor <= 1.3)} |`);
  rows.push(`| 3 hosts / 1 host | ${ratio31.toFixed(2)}x | ≤ 1.2x | ${mark(ratio31 <= 1.2)} |`);
  const ssh = r.ssh as Record<string, { connections: number; commands: number; uploads: number; bytesSent: number; bytesReceived: number }>;
  for (const [h, v] of Object.entries(ssh ?? {})) {
    rows.push(`| SSH per swap, ${h} | ${v.connections} connection(s), ${v.commands} commands, ${v.uploads} uploads, ${v.bytesSent} B sent, ${v.bytesReceived} B received | ≤ 1 connection | ${mark(v.connections <= 1)} |`);
  }
  const pr = preview.deployed.preview.median / preview.empty.preview.median;
  const nr = preview.deployed.noopUp.median / preview.empty.noopUp.median;
  rows.push(`| preview, deployed (3 hosts) vs empty program | ${preview.deployed.preview.median} vs ${preview.empty.preview.median} ms = ${pr.toFixed(2)}x | ≤ 1.2x | ${mark(pr <= 1.2)} |`);
  rows.push(`| no-op up, deployed vs empty program | ${preview.deployed.noopUp.median} vs ${preview.empty.noopUp.median} ms = ${nr.toFixed(2)}x | ≤ 1.2x | ${mark(nr <= 1.2)} |`);
  const one = preview.oneTrivialDynamicResource;
  rows.push(`| reference: one trivial dynamic resource (plugin start only) | preview ${one.preview.median} ms, no-op up ${one.noopUp.median} ms | | |`);
  const c = r.cli as (CliFigures & { twoHostFloor: { median: number; min: number } }) | undefined;
  if (c) {
    rows.push(`| floor: a version change on 2 hosts at once (start, probe until it answers, stop the old; plain SSH) | min ${c.twoHostFloor.min} ms, median ${c.twoHostFloor.median} ms | | |`);
    rows.push(...cliReport(c, { floorMs: c.twoHostFloor.median }));
  }
  const b = r.build as { warm: { median: number; min: number }; cold: { median: number; min: number }; deployAlone: { median: number } } | undefined;
  if (b) {
    rows.push(`| build + deploy of a one-line change, 2 hosts: warm builder cache | min ${b.warm.min} ms, median ${b.warm.median} ms (${(b.warm.median / b.deployAlone.median).toFixed(2)}x the deploy alone) | | |`);
    rows.push(`| build + deploy of a one-line change, 2 hosts: cold builder cache | min ${b.cold.min} ms, median ${b.cold.median} ms (${(b.cold.median / b.deployAlone.median).toFixed(2)}x the deploy alone) | | |`);
    rows.push(`| deploy alone: version change of a built image, 2 hosts | median ${b.deployAlone.median} ms | | |`);
  }
  const rb = r.rollback as { ms: number; pulled: string };
  rows.push(`| rollback one version (registry stopped) | ${rb.ms} ms, pulled: ${rb.pulled} | no pull | ${mark(!rb.pulled.includes("true"))} |`);
  const mem = r.memory as { providerPeakRssMiB: number; programPeakRssMiB: number };
  rows.push(`| peak RSS, provider / program (3-host swap) | ${mem.providerPeakRssMiB} / ${mem.programPeakRssMiB} MiB | | |`);
  rows.push(`| bench duration | ${r.durationSeconds} s${r.quick ? " (--quick)" : ""} | | |`);
  return rows.join("\n");
}

(fleetMode ? fleet() : faultsMode ? faultsOnly() : main()).catch((e) => {
  console.error(e);
  registryFault("start");
  process.exit(1);
});

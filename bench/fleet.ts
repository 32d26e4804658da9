/** `--fleet`: 1, 10 and 50 hosts under load, no-op and version change, beside the engine's own
 * floor with as many resources; our own CPU seconds per host per deploy, to project a fleet's
 * cost past this machine. */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { shellJoin } from "../provider/commands/shell";
import * as docker from "../provider/commands/docker";
import type { SshConnection } from "../provider/ssh/executor";
import { startLoad } from "../testbed/load";
import { PulumiProject } from "../testbed/pulumi";
import { host, repoRoot, sandbox, onHost, target } from "../testbed/sandbox";
import { timing } from "./stats";
import { REPS, log, pool, sleep, statsFile } from "./context";
import { benchProject, peakRss, previewAndNoop, referenceProject, set, setUpFlags, sshStats, timedUp, type CpuUse } from "./measure";
import { login, startTraefikDirect } from "./baseline";


export const FLEET_SIZES = (process.env.KP_FLEET_SIZES ?? "1,10,50").split(",").map(Number);
export const FLEET_RATE = 40; // requests/s per host, for each of keep-alive and new connections
/** The load one process can send without falling behind on this machine beside fifty hosts'
 * engines: past 10 hosts the rate per host shrinks to a total of half what 10 hosts get. */
const fleetRate = (hosts: number) => (hosts <= 10 ? FLEET_RATE : Math.max(2, Math.floor((FLEET_RATE * 5) / hosts)));
/** Boot one host at a time only where it takes less than a few minutes. */
const BOOT_LIMIT_UP_TO = 10;

export interface FleetFigures {
  hosts: number;
  /** The raw Docker sequence of a swap (run new, probe it, stop and remove old) on every
   * host at once over plain SSH, no Pulumi: what this machine allows. */
  floor?: ReturnType<typeof timing>;
  /** CPU during the first version change: machine busy fraction, CPU seconds per process. */
  cpu: CpuUse;
  /** Our own CPU seconds (provider, program and engine) per host for one version change. */
  cpuPerHostS: number;
  /** Requests per second per host and kind of connection during the swaps. */
  rate: number;
  /** Version changes timed (the median's sample). */
  reps: number;
  /** No-op preview and up of a program with as many trivial dynamic resources (no SSH):
   * what the Pulumi engine alone costs at this size. */
  engineFloor: { resources: number; preview: ReturnType<typeof timing>; noopUp: ReturnType<typeof timing> };
  /** The first deploy (every host from nothing) and the preview of a pending version change. */
  firstDeployMs: number;
  changePreviewMs: number;
  swapAllAtOnce: ReturnType<typeof timing>;
  swapBootLimit1?: number;
  failed: number;
  requests: number;
  sshPerHost: { connections: number[]; commands: number[] };
  noopPreview: ReturnType<typeof timing>;
  noopUp: ReturnType<typeof timing>;
  memory: { providerPeakRssMiB: number; programPeakRssMiB: number };
  brokenImage: { msToError: number; deadlineSeconds: number };
}

/** One fleet size: N app hosts in the sandbox, Traefik and a web role on every one. */
export async function fleetSize(n: number): Promise<FleetFigures> {
  log(`fleet: ${n} app host(s)`);
  execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "up", "--hosts", String(n)], { stdio: "inherit" });
  const hosts = Array.from({ length: n }, (_, i) => `app${i + 1}`);
  const fresh = JSON.parse(execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "status", "--json"], { encoding: "utf8" }));
  Object.assign(sandbox(), fresh);
  pool.closeAll();
  for (const h of hosts) {
    const conn = await pool.connect(target(h));
    await conn.exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal"));
  }
  // The raw floor is a diagnostic of the small fleets: at 50 hosts it alone takes minutes.
  const floor = n <= BOOT_LIMIT_UP_TO ? await fleetFloor(hosts) : undefined;
  for (const h of hosts) await (await pool.connect(target(h))).exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal"));
  const p = await benchProject(`fleet-${n}`);
  await set(p, "hosts", JSON.stringify(hosts));
  // Fifty sshd answering at once on two cores (the hosts' engines and the load beside them)
  // take longer than the tests' 5 s per handshake.
  if (n > BOOT_LIMIT_UP_TO) await set(p, "connectTimeout", "30");
  await set(p, "version", "v1");
  await set(p, "token", "t", true);
  await set(p, "deadline", "10");
  const first = await timedUp(p);
  // What a deployer waits for before confirming a version change on this many hosts.
  await set(p, "version", "v2");
  const t0 = performance.now();
  await p.preview();
  const changePreviewMs = Math.round(performance.now() - t0);
  await set(p, "version", "v1");
  const rate = fleetRate(n);
  const loadAll = () => {
    const ls = hosts.flatMap((h) => [
      startLoad({ url: `http://${host(h).address}/version`, rate, connections: 2 }),
      startLoad({ url: `http://${host(h).address}/version`, rate, newConnections: true }),
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
  // The largest fleet takes minutes per round: three rounds give its median.
  const reps = n > BOOT_LIMIT_UP_TO ? Math.min(REPS, 3) : REPS;
  for (let i = 0; i < reps; i++) {
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
  let one: number | undefined;
  if (n <= BOOT_LIMIT_UP_TO) {
    await set(p, "bootLimit", "1");
    version = version === "v1" ? "v2" : "v1";
    await set(p, "version", version);
    one = Math.round((await timedUp(p)).ms);
    await p.run(["config", "rm", "--stack", p.stack, "bootLimit"]);
  }
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
    cpuPerHostS: Number(((cpu!.providerS + cpu!.programS + cpu!.engineS) / n).toFixed(3)),
    rate,
    reps,
    engineFloor,
    firstDeployMs: Math.round(first.ms),
    changePreviewMs,
    swapAllAtOnce: timing(swaps),
    swapBootLimit1: one,
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
export async function fleetFloor(hosts: string[]): Promise<ReturnType<typeof timing>> {
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
      for (const v of ["v1", "v2"]) await c.exec(onHost(shellJoin(["docker", "pull", "-q", img(v)])));
      await c.exec(onHost(run("v1")));
      await probe(c, "v1");
    }),
  );
  const stop = (() => {
    const ls = hosts.flatMap((h) => [
      startLoad({ url: `http://${host(h).address}/version`, rate: fleetRate(hosts.length), connections: 2 }),
      startLoad({ url: `http://${host(h).address}/version`, rate: fleetRate(hosts.length), newConnections: true }),
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
          await c.exec(onHost(run(to)));
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
export async function engineFloorOf(p: PulumiProject, n: number): Promise<FleetFigures["engineFloor"]> {
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

export async function fleet() {
  const started = Date.now();
  setUpFlags(["--parallel", "64"]);
  mkdirSync(path.dirname(statsFile), { recursive: true });
  process.env.KAMAL_SSH_STATS_FILE = statsFile;
  const sizes: FleetFigures[] = [];
  // The sandbox the tests were using, to go back to it.
  let before = 0;
  try {
    before = (JSON.parse(execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "status", "--json"], { encoding: "utf8" })) as { hosts: { name: string }[] }).hosts.filter((h) => /^app\d+$/.test(h.name)).length;
  } catch {
    // Not up: the default comes back.
  }
  const machine = `${execFileSync("nproc", { encoding: "utf8" }).trim()} cores, ${Math.round(Number(execFileSync("awk", ["/MemTotal/ {print $2}", "/proc/meminfo"], { encoding: "utf8" })) / 1024 / 1024)} GiB`;
  const dir = path.join(repoRoot, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `fleet-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  // Written after every size: a run stopped at its largest fleet keeps what it measured.
  const save = (complete: boolean) => {
    const results = { fleet: sizes, reps: REPS, ratePerHost: FLEET_RATE, machine, durationSeconds: Math.round((Date.now() - started) / 1000), complete };
    const table = sizes.some((f) => f.hosts === 1) ? fleetReport(results) : "";
    writeFileSync(file, JSON.stringify({ ...results, table }, null, 2) + "\n");
    return table;
  };
  try {
    for (const n of FLEET_SIZES) {
      sizes.push(await fleetSize(n));
      save(false);
      log(`fleet: ${n} host(s) measured, written to ${path.relative(repoRoot, file)}`);
    }
  } finally {
    // Back to the sandbox the tests use.
    execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "up", ...(before ? ["--hosts", String(before)] : [])], { stdio: "inherit" });
  }
  console.log(save(true));
  console.log(`\nResults: ${path.relative(repoRoot, file)}`);
  pool.closeAll();
}

export function fleetReport(r: { fleet: FleetFigures[]; machine: string; durationSeconds: number; reps: number }): string {
  const mark = (ok: boolean) => (ok ? "met" : "**MISSED**");
  const one = r.fleet.find((f) => f.hosts === 1)!;
  const rows = ["| hosts | measure | value | goal | |", "|---|---|---|---|---|"];
  for (const f of r.fleet) {
    const swapRatio = f.swapAllAtOnce.median / one.swapAllAtOnce.median;
    const pr = f.noopPreview.median / one.noopPreview.median;
    const ur = f.noopUp.median / one.noopUp.median;
    const conns = [...new Set(f.sshPerHost.connections)].join("/");
    const cmds = `${Math.min(...f.sshPerHost.commands)}–${Math.max(...f.sshPerHost.commands)}`;
    rows.push(`| ${f.hosts} | version change, all hosts at once (median of ${f.reps ?? r.reps}) | ${f.swapAllAtOnce.median} ms (${(swapRatio).toFixed(2)}x one host) | ${f.hosts === 10 ? "≤ 1.3x one host" : ""} | ${f.hosts === 10 ? mark(swapRatio <= 1.3) : ""} |`);
    if (f.firstDeployMs !== undefined) rows.push(`| ${f.hosts} | first deploy (nothing on the hosts); preview of a version change | ${f.firstDeployMs} ms; ${f.changePreviewMs} ms | | |`);
    rows.push(`| ${f.hosts} | our own CPU per host per version change (provider + program + engine) | ${f.cpuPerHostS} s (${(f.cpuPerHostS / one.cpuPerHostS).toFixed(2)}x one host's) | | |`);
    if (f.floor && one.floor) rows.push(`| ${f.hosts} | floor: raw docker swap (run, probe, stop, rm), all hosts at once, no Pulumi | ${f.floor.median} ms (${(f.floor.median / one.floor.median).toFixed(2)}x one host) | | |`);
    rows.push(`| ${f.hosts} | CPU during a version change: machine busy; provider / program / engine CPU | ${Math.round(f.cpu.machineBusy * 100)}% of ${f.cpu.wallS} s; ${f.cpu.providerS} / ${f.cpu.programS} / ${f.cpu.engineS} s | | |`);
    if (f.swapBootLimit1 !== undefined) rows.push(`| ${f.hosts} | version change, bootLimit 1 | ${f.swapBootLimit1} ms | | |`);
    rows.push(`| ${f.hosts} | failed requests during the swaps, load on every host (${f.rate} req/s per host and kind) | ${f.failed} of ${f.requests} | 0 | ${mark(f.failed === 0)} |`);
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

/**
 * `npm run bench [-- --quick | --fleet | --faults]`: zero downtime and speed, measured side by
 * side on the sandbox in one run; the full run ends with the fault scenarios (test/helpers/
 * faults.ts) under load, which `--faults` runs alone (`--only=<name>,…` picks scenarios by
 * their key in FAULTS) and `--quick` leaves out. Writes bench/results/<timestamp>.json and prints a markdown table
 * with each figure next to its goal. Never fails on a missed goal: it says so.
 *
 * Here: the main run and its report. The parts: context.ts (mode, hosts, pool), load.ts,
 * measure.ts (timed updates, memory, CPU), baseline.ts (naive deploy, raw swap floor),
 * cli.ts (the pulumi-kamal path), build.ts, fleet.ts, faults.ts, stats.ts.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { shellJoin } from "../provider/commands/shell";
import * as docker from "../provider/commands/docker";
import { registryFault, repoRoot, sandbox, onHost, target } from "../testbed/sandbox";
import { makeCertificate } from "../testbed/tls";
import { buildAndDeploy } from "./build";
import { median, timing } from "./stats";
import { cliPath, cliReport, twoHostFloor, type CliFigures } from "./cli";
import { benchProject, peakRss, previewAndNoop, referenceProject, set, sshStats, timedUp } from "./measure";
import { ALL, RATE, REPS, WEB, cleanHosts, faultsMode, fleetMode, log, pool, quick, statsFile } from "./context";
import { HTTPS_RATE, failedOf, underLoad, type PhaseLoad } from "./load";
import { faultPhases, faultsOnly, faultsReport, type FaultFigures } from "./faults";
import { floorSwap, naiveDeploy, startTraefikDirect, waitHealthy } from "./baseline";
import { fleet } from "./fleet";


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
  await conn.exec(onHost(shellJoin(["docker", "pull", "-q", img("v1")])));
  await conn.exec(onHost(shellJoin(["docker", "pull", "-q", img("v2")])));
  await conn.exec(
    onHost(shellJoin([
      "docker", "run", "--detach", "--name", "floor-v1", "--volume", "/root/.kamal/floor-cords/v1:/tmp/kamal-cord",
      "--health-cmd", "(/app probe http://127.0.0.1/up) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)",
      "--health-interval", "1s", "--health-retries", "3", img("v1"),
    ])),
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


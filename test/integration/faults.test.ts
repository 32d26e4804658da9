/**
 * Faults under load on both web hosts: a network cut mid-swap (50 s: the swap completes;
 * 120 s: it fails naming host and step, one version keeps serving), sshd down when the `up`
 * starts, two stacks deploying one service to one host at once (the deploy lock serializes
 * them), and a lock taken on purpose the Kamal way (refused at once, naming the holder).
 * After each, the next `pulumi up` converges: one container per role per host, 0 failed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/executor";
import { httpGet } from "../helpers/http";
import { startLoad, type Load, type LoadResult } from "../helpers/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../helpers/pulumi";
import { fault, host, registryFault, repoRoot, sandbox, target } from "../helpers/sandbox";

const pool = new SshPool();
const WEB = ["app1", "app2"];

function project(name: string): PulumiProject {
  return new PulumiProject(
    scratchProject(name, {
      "Pulumi.yaml": `name: kp-${name}\nruntime: nodejs\n`,
      "package.json": JSON.stringify({ name: `kp-${name}`, main: "index.ts" }),
      "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/bench"))};\n`,
    }),
  );
}

async function set(p: PulumiProject, values: Record<string, string>) {
  for (const [k, v] of Object.entries(values)) {
    const r = await p.run(["config", "set", ...(k === "token" ? ["--secret"] : []), "--stack", p.stack, k, v]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
}

async function running(h: string): Promise<string[]> {
  const conn = await pool.connect(target(h));
  return (await conn.exec("docker ps --filter label=service=bench --format '{{.Names}}'")).stdout.split("\n").filter(Boolean).sort();
}

function loadOn(hosts: string[]): Map<string, Load[]> {
  return new Map(
    hosts.map((h) => [
      h,
      [
        startLoad({ url: `http://${host(h).address}/version`, rate: 100, connections: 4 }),
        startLoad({ url: `http://${host(h).address}/version`, rate: 30, newConnections: true }),
        startLoad({ url: `http://${host(h).address}/slow?ms=1500`, rate: 5, connections: 10 }),
      ],
    ]),
  );
}

async function stopLoad(loads: Map<string, Load[]>): Promise<Map<string, LoadResult[]>> {
  await new Promise((r) => setTimeout(r, 1000));
  return new Map(await Promise.all([...loads].map(async ([h, ls]) => [h, await Promise.all(ls.map((l) => l.stop()))] as const)));
}

function failed(results: LoadResult[] | undefined): number {
  const n = (results ?? []).reduce((k, l) => k + l.non2xx + l.errors + l.timeouts, 0);
  if (n > 0) console.error("failed requests:", JSON.stringify(results!.map((l) => ({ ...l, samples: l.samples.slice(0, 5) }))));
  return n;
}

/** Starts `pulumi up`; calls `at` once its output matches `when`. */
function upWatching(p: PulumiProject, when: RegExp, at: (child: ChildProcess) => void): Promise<PulumiRun> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", p.stack], { cwd: p.dir, env: p.env });
    let stdout = "";
    let stderr = "";
    let fired = false;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (!fired && when.test(stdout)) {
        fired = true;
        at(child);
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function versionsServed(h: string, n = 20): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(JSON.parse((await httpGet(`http://${host(h).address}/version`)).body).version);
  return seen;
}

const main = project("faults");
let version = "v1";

/** A version change of the main stack under load; returns the run and the load per host. */
async function swapUnderLoad(opts: { when?: RegExp; at?: (child: ChildProcess) => void; afterUp?: () => void } = {}) {
  version = version === "v1" ? "v2" : "v1";
  await set(main, { version });
  const loads = loadOn(WEB);
  await new Promise((r) => setTimeout(r, 500));
  const up = opts.when ? await upWatching(main, opts.when, opts.at!) : await main.up();
  // A fault that must end before the load can finish (requests queued for a host that is down).
  opts.afterUp?.();
  return { up, load: await stopLoad(loads) };
}

/** The next `up` converges: one container per host, the configured version, 0 failed. */
async function convergesUnderLoad(extra: string[] = []) {
  const loads = loadOn(WEB);
  await new Promise((r) => setTimeout(r, 500));
  const up = await main.up(extra);
  const load = await stopLoad(loads);
  expect(up.code, up.stdout + up.stderr).toBe(0);
  for (const h of WEB) {
    expect(failed(load.get(h))).toBe(0);
    expect(await running(h)).toEqual([`bench-web-${version}`]);
    expect(await versionsServed(h)).toEqual(new Set([version]));
  }
}

beforeAll(async () => {
  for (const h of WEB) {
    const conn = await pool.connect(target(h));
    await conn.exec("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
  }
  await main.ensureStack();
  // Traefik stays on both hosts whatever the role's hosts.
  await set(main, { hosts: JSON.stringify(WEB), traefikHosts: JSON.stringify(WEB), version, token: "fault-token-7d1e", deadline: "20", healthyAfter: "2" });
  const up = await main.up();
  expect(up.code, up.stdout + up.stderr).toBe(0);
});

afterAll(async () => {
  for (const h of WEB) {
    fault(h, "net", "start");
    fault(h, "ssh", "start");
    fault(h, "api", "start");
  }
  registryFault("start");
  await main.destroy();
  pool.closeAll();
});

describe("faults mid-swap, under load", () => {
  /** A version change under load with app1's network cut for `seconds` right after its new
   * container starts; resolves once the network is back. */
  async function swapWithCut(seconds: number) {
    let restored: Promise<void> = Promise.resolve();
    const swapped = await swapUnderLoad({
      when: /\[kamal\] app1: starting bench-web-/,
      at: () => {
        fault("app1", "net", "stop");
        restored = new Promise((r) => setTimeout(() => r(fault("app1", "net", "start")), seconds * 1000));
      },
    });
    return { ...swapped, restored };
  }

  it("a network cut of 50 s right after the new container starts: the swap completes", async () => {
    const { up, load, restored } = await swapWithCut(50);
    await restored;
    const out = up.stdout + up.stderr;
    expect(up.code, out).toBe(0);
    const address = host("app1").address.replace(/\./g, "\\.");
    expect(out).toMatch(new RegExp(`ssh ${address}: connection lost; dialling again for up to 60s`));
    expect(out).toMatch(new RegExp(`ssh ${address}: connected again after \\d+\\.\\ds`));
    expect(failed(load.get("app2"))).toBe(0);
    for (const h of WEB) expect(await running(h)).toEqual(["bench-web-v2"]);
    expect(await versionsServed("app1")).toEqual(new Set(["v2"]));
  });

  it("a network cut of 120 s: the up fails naming host and step, the old version alone serves, the next up converges", async () => {
    const { up, load, restored } = await swapWithCut(120);
    const out = up.stdout + up.stderr;
    expect(up.code, out).not.toBe(0);
    expect(out).toMatch(
      /app1: (starting bench-web-v1|waiting for bench-web-v1 to answer its health check): connection lost and not back within 60s \([^)]*\): .*\. bench-web-v2 stays the only version in rotation; bench-web-v1 was started but never routed; the next `pulumi up` converges/,
    );
    expect(failed(load.get("app2"))).toBe(0);
    await restored;
    expect(await versionsServed("app1")).toEqual(new Set(["v2"]));
    // The deploy lock was released once the host could be reached again.
    expect((await (await pool.connect(target("app1"))).run("test -e .kamal/lock-bench")).code).toBe(1);
    await convergesUnderLoad();
  });

  it("sshd down when the up starts: that host fails naming itself and the step, the other deploys, the next up converges", async () => {
    fault("app1", "ssh", "stop");
    const { up, load } = await swapUnderLoad();
    fault("app1", "ssh", "start");
    const out = up.stdout + up.stderr;
    expect(up.code, out).not.toBe(0);
    expect(out).toContain(`app1: connecting: could not connect after 3 attempt(s): connect ECONNREFUSED ${host("app1").address}:22`);
    expect(failed(load.get("app1"))).toBe(0);
    expect(failed(load.get("app2"))).toBe(0);
    expect(await running("app2")).toEqual([`bench-web-${version}`]);
    expect(await running("app1")).toEqual([`bench-web-${version === "v1" ? "v2" : "v1"}`]);
    await convergesUnderLoad();
  });
});

describe("more faults, under load", () => {
  it("a host unreachable when the up starts: it fails naming itself and the step, the other deploys, the next up converges", async () => {
    fault("app1", "net", "stop");
    const { up, load } = await swapUnderLoad({ afterUp: () => fault("app1", "net", "start") });
    const out = up.stdout + up.stderr;
    expect(up.code, out).not.toBe(0);
    expect(out).toMatch(/app1: connecting: could not connect after 3 attempt\(s\): /);
    expect(failed(load.get("app2"))).toBe(0);
    expect(await running("app2")).toEqual([`bench-web-${version}`]);
    await convergesUnderLoad();
  });

  it("dockerd restarted mid-swap: one version serves on that host afterwards, the next up converges", async () => {
    let restarted: Promise<void> = Promise.resolve();
    const { up, load } = await swapUnderLoad({
      when: /\[kamal\] app1: starting bench-web-/,
      at: () => {
        restarted = new Promise((r) =>
          setTimeout(() => {
            fault("app1", "docker", "stop");
            fault("app1", "docker", "start");
            r();
          }, 300),
        );
      },
    });
    await restarted;
    const out = up.stdout + up.stderr;
    if (up.code !== 0) expect(out).toMatch(/app1: [a-z][^:\n]*: /);
    expect(failed(load.get("app2"))).toBe(0);
    // Whatever the engine restarted, the route names containers that answer: one version.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await versionsServed("app1")).size).toBe(1);
    await convergesUnderLoad(["--refresh"]);
  });

  it("Ctrl-C (SIGINT) mid-swap: the swap in flight completes, locks are released, the next up converges", async () => {
    await set(main, { healthyAfter: "4" });
    const { up, load } = await swapUnderLoad({ when: /\[kamal\] app1: starting bench-web-/, at: (child) => child.kill("SIGINT") });
    await set(main, { healthyAfter: "2" });
    expect(up.code, up.stdout + up.stderr).not.toBe(0);
    for (const h of WEB) {
      expect(failed(load.get(h))).toBe(0);
      expect(await running(h)).toHaveLength(1);
      expect((await (await pool.connect(target(h))).run("test -e .kamal/lock-bench")).code).toBe(1);
    }
    await convergesUnderLoad(["--refresh"]);
  });

  it("registry down for a version not on the hosts: the pull fails naming host and step, the old version keeps serving", async () => {
    const next = version === "v1" ? "v2" : "v1";
    // Retained containers keep their images: those of that version go first.
    for (const h of WEB) {
      await (await pool.connect(target(h))).exec(`docker ps -aq --filter label=service=bench --filter label=version=${next} | xargs -r docker rm -f >/dev/null; docker rmi ${sandbox().images.app[next]}`);
    }
    registryFault("stop");
    const { up, load } = await swapUnderLoad();
    registryFault("start");
    const out = up.stdout + up.stderr;
    expect(up.code, out).not.toBe(0);
    expect(out).toContain(`app1: pulling ${sandbox().images.app[next]}: `);
    for (const h of WEB) {
      expect(failed(load.get(h))).toBe(0);
      expect(await running(h)).toEqual([`bench-web-${next === "v1" ? "v2" : "v1"}`]);
    }
    await convergesUnderLoad();
  });

  it("Traefik's API unreachable: traffic is not moved, the old version keeps serving", async () => {
    for (const h of WEB) fault(h, "api", "stop");
    const { up, load } = await swapUnderLoad();
    for (const h of WEB) fault(h, "api", "start");
    const out = up.stdout + up.stderr;
    expect(up.code, out).not.toBe(0);
    expect(out).toMatch(/app1: asking Traefik's API before moving traffic: Traefik's API \(127\.0\.0\.1:8080 on the host\) gave no answer within 10s; traffic was not moved; it was stopped and kept as bench-web-v\d_failed_[0-9a-f]{8} for its logs, bench-web-v\d keeps serving\./);
    const old = version === "v1" ? "v2" : "v1";
    for (const h of WEB) {
      expect(failed(load.get(h))).toBe(0);
      expect(await running(h)).toEqual([`bench-web-${old}`]);
    }
    await convergesUnderLoad();
  });

  it("a host removed from the role under load: it drains (in-flight requests finish), the other keeps serving", async () => {
    await set(main, { hosts: '["app1"]' });
    const loads = loadOn(WEB);
    await new Promise((r) => setTimeout(r, 500));
    const up = await main.up();
    const load = await stopLoad(loads);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(failed(load.get("app1"))).toBe(0);
    // app2 answers 404 once its route is gone; nothing in flight there failed.
    const app2 = load.get("app2")!;
    expect(app2.reduce((n, l) => n + l.errors + l.timeouts, 0)).toBe(0);
    expect(await running("app2")).toEqual([]);
    expect(await running("app1")).toEqual([`bench-web-${version}`]);
    // Back in the role: app2 serves again (it answered 404 until then, having no app).
    await set(main, { hosts: JSON.stringify(WEB) });
    const back = await main.up();
    expect(back.code, back.stdout + back.stderr).toBe(0);
    for (const h of WEB) expect(await running(h)).toEqual([`bench-web-${version}`]);
    expect(await versionsServed("app2")).toEqual(new Set([version]));
  });
});

describe("the deploy lock", () => {
  it("serializes two stacks deploying one service to one host at once", async () => {
    const other = project("faults-other");
    await other.ensureStack();
    // The main stack goes to the other version; this stack deploys the one serving now, so
    // whichever swapped last shows on app1.
    const otherVersion = version;
    await set(other, { hosts: '["app1"]', version: otherVersion, token: "fault-token-7d1e", deadline: "20", healthyAfter: "2", traefik: "false" });
    // The main stack swaps (its new container answers after 20 s); the other starts while it
    // holds the lock (its engine needs a few seconds to get there, more on a loaded machine).
    await set(main, { healthyAfter: "20", deadline: "40" });
    let second: Promise<PulumiRun> | undefined;
    const { up, load } = await swapUnderLoad({ when: /\[kamal\] app1: starting bench-web-/, at: () => (second = other.up()) });
    const otherUp = await second!;
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(otherUp.code, otherUp.stdout + otherUp.stderr).toBe(0);
    expect(otherUp.stdout).toMatch(/\[kamal\] app1: waiting for the deploy lock \.kamal\/lock-bench, held by pulumi-kamal on \S+@\S+ pid \d+ since \S+ \(version v\d, "Automatic deploy lock"\) \(up to 120s\)/);
    for (const h of WEB) expect(failed(load.get(h))).toBe(0);
    // Never interleaved: the other stack swapped after the main one finished, so its version serves.
    expect(await running("app1")).toEqual([`bench-web-${otherVersion}`]);
    // Its state goes (the hosts stay as they are); the main stack converges app1 back.
    expect((await other.run(["stack", "rm", "--force", "--yes", "--stack", other.stack])).code).toBe(0);
    await set(main, { healthyAfter: "2", deadline: "20" });
    // Refresh finds app1's container replaced (drift); the up puts the main stack's back.
    await convergesUnderLoad(["--refresh"]);
    const conn = await pool.connect(target("app1"));
    expect((await conn.run("test -e .kamal/lock-bench")).code).toBe(1);
  });

  it("refuses at once a lock taken on purpose the Kamal way, naming its holder; goes on once it is released", async () => {
    const conn = await pool.connect(target("app1"));
    const details = Buffer.from("Locked by: Jane Doe at 2026-11-23T16:59:01Z\nVersion: 3f2a9c1\nMessage: db migration").toString("base64");
    await conn.exec(`mkdir -p .kamal/lock-bench && echo "${details}" > .kamal/lock-bench/details`);
    const { up, load } = await swapUnderLoad();
    const out = up.stdout + up.stderr;
    expect(up.code, out).not.toBe(0);
    expect(out).toContain(
      'app1: taking the deploy lock .kamal/lock-bench: the deploy lock .kamal/lock-bench on app1 is held by Jane Doe since 2026-11-23T16:59:01Z (version 3f2a9c1, "db migration"); it was taken on purpose, so this deploy does not wait.',
    );
    expect(failed(load.get("app1"))).toBe(0);
    expect(await running("app2")).toEqual([`bench-web-${version}`]);
    // `kamal lock release` does exactly this.
    await conn.exec("rm .kamal/lock-bench/details && rm -r .kamal/lock-bench");
    await convergesUnderLoad();
  });
});

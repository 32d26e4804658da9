/**
 * The fault scenarios, one definition each, shared by test/integration/faults.test.ts (which
 * asserts on what a scenario observed) and `npm run bench` (which records its failed
 * requests). Each is a `pulumi up` of test/programs/bench.ts under load on both web hosts
 * with one fault injected; `FaultRig.play` then ends every fault, observes the hosts, puts
 * back what the scenario changed on purpose and runs the converging `pulumi up`, under load
 * too.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import { SshPool } from "../provider/ssh/pool";
import { httpGet } from "./http";
import { startLoad, type Load, type LoadResult } from "./load";
import { PulumiProject, scratchProject, type PulumiRun } from "./pulumi";
import { fault, host, registryFault, repoRoot, sandbox, onHost, target } from "./sandbox";

export const WEB = ["app1", "app2"];
const TOKEN = "fault-token-7d1e";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const other = (v: string) => (v === "v1" ? "v2" : "v1");

export type LoadByHost = Map<string, LoadResult[]>;

/** What a scenario's `up` did. */
export interface Played {
  up: PulumiRun;
  load: LoadByHost;
  /** Facts only this scenario gathers (the other stack's run, what ran at the kill…). */
  notes?: Record<string, unknown>;
}

/** What `FaultRig.play` observed: the faulted `up`, the hosts once every fault ended, and the
 * converging `up`. */
export interface Observed extends Played {
  out: string;
  /** The version configured after the scenario, and the one serving before it. */
  version: string;
  before: string;
  running: Record<string, string[]>;
  served: Record<string, string[]>;
  lockLeft: Record<string, boolean>;
  converge: { up: PulumiRun; out: string; load: LoadByHost; running: Record<string, string[]>; served: Record<string, string[]> };
  seconds: number;
}

export interface Fault {
  /** What happens, as the bench table names the phase. */
  title: string;
  /** Hosts the fault itself cuts off from clients: their requests are reported, not counted. */
  cutOff?: string[];
  /** Hosts the role leaves: 404 is their expected answer; only transport failures count. */
  routeGone?: string[];
  run(rig: FaultRig): Promise<Played>;
  /** Puts back what the scenario changed on purpose, before the converging `up`. */
  settle?(rig: FaultRig): Promise<void>;
  convergeFlags?: string[];
}

export class FaultRig {
  readonly pool = new SshPool();
  readonly main: PulumiProject;
  /** The version the main stack is configured with. */
  version = "v1";

  constructor(name = "faults") {
    this.main = FaultRig.project(name);
  }

  static project(name: string): PulumiProject {
    return new PulumiProject(
      scratchProject(name, {
        "Pulumi.yaml": `name: kp-${name}\nruntime: nodejs\n`,
        "package.json": JSON.stringify({ name: `kp-${name}`, main: "index.ts" }),
        "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/bench"))};\n`,
      }),
    );
  }

  async set(p: PulumiProject, values: Record<string, string>) {
    for (const [k, v] of Object.entries(values)) {
      const r = await p.run(["config", "set", ...(k === "token" ? ["--secret"] : []), "--stack", p.stack, k, v]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
  }

  /** Clean hosts, then v1 on both web hosts with a Traefik on each. */
  async setup() {
    for (const h of WEB) await (await this.conn(h)).exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal"));
    await this.main.ensureStack();
    this.version = "v1";
    await this.set(this.main, { hosts: JSON.stringify(WEB), traefikHosts: JSON.stringify(WEB), version: this.version, token: TOKEN, deadline: "20", healthyAfter: "2" });
    const up = await this.main.up();
    if (up.code !== 0) throw new Error(`the first up failed:\n${up.stdout}\n${up.stderr}`);
  }

  async teardown() {
    endFaults();
    await this.main.destroy();
    this.pool.closeAll();
  }

  conn(h: string) {
    return this.pool.connect(target(h));
  }

  async running(h: string): Promise<string[]> {
    return (await (await this.conn(h)).exec(onHost("docker ps --filter label=service=bench --format '{{.Names}}'"))).stdout.split("\n").filter(Boolean).sort();
  }

  async lockLeft(h: string): Promise<boolean> {
    return (await (await this.conn(h)).run(onHost("test -e .kamal/lock-bench"))).code === 0;
  }

  async versionsServed(h: string, n = 20): Promise<string[]> {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await httpGet(`http://${host(h).address}/version`).catch((e: Error) => ({ status: 0, body: e.message }));
      seen.add(r.status === 200 ? JSON.parse(r.body).version : `HTTP ${r.status}`);
    }
    return [...seen].sort();
  }

  /** Keep-alive, new-connection and slow (1.5 s) requests on each host. */
  loadOn(hosts: string[] = WEB): Map<string, Load[]> {
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

  async stopLoad(loads: Map<string, Load[]>): Promise<LoadByHost> {
    await sleep(1000);
    return new Map(await Promise.all([...loads].map(async ([h, ls]) => [h, await Promise.all(ls.map((l) => l.stop()))] as const)));
  }

  /** Starts `pulumi up`; calls `at` once its output matches `when`. */
  upWatching(p: PulumiProject, when: RegExp, at: (child: ChildProcess) => void, opts: { detached?: boolean } = {}): Promise<PulumiRun> {
    return new Promise((resolve, reject) => {
      const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", p.stack], { cwd: p.dir, env: p.env, detached: opts.detached });
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
      child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
    });
  }

  /** A version change of the main stack under load. `afterUp` ends a fault that must be over
   * before the load can finish (requests queued for a host that is down). */
  async swapUnderLoad(opts: { when?: RegExp; at?: (child: ChildProcess) => void; detached?: boolean; afterUp?: () => void } = {}): Promise<Played> {
    this.version = other(this.version);
    await this.set(this.main, { version: this.version });
    return this.upUnderLoad(opts);
  }

  async upUnderLoad(opts: { when?: RegExp; at?: (child: ChildProcess) => void; detached?: boolean; afterUp?: () => void; flags?: string[] } = {}): Promise<Played> {
    const loads = this.loadOn();
    await sleep(500);
    const up = opts.when ? await this.upWatching(this.main, opts.when, opts.at!, { detached: opts.detached }) : await this.main.up(opts.flags);
    opts.afterUp?.();
    return { up, load: await this.stopLoad(loads) };
  }

  /** A swap with app1's network cut for `seconds` right after its new container starts;
   * the cut ends before the load stops. */
  async swapWithCut(seconds: number): Promise<Played> {
    let restored: Promise<void> = Promise.resolve();
    const played = await this.swapUnderLoad({
      when: /\[kamal\] app1: starting bench-web-/,
      at: () => {
        fault("app1", "net", "stop");
        restored = sleep(seconds * 1000).then(() => fault("app1", "net", "start"));
      },
    });
    await restored;
    return played;
  }

  /** Runs a scenario, ends every fault, observes, settles, converges (all under load). */
  async play(f: Fault): Promise<Observed> {
    const t0 = Date.now();
    const before = this.version;
    let played: Played;
    try {
      played = await f.run(this);
    } finally {
      endFaults();
    }
    const observe = async (of: (h: string) => Promise<unknown>) => Object.fromEntries(await Promise.all(WEB.map(async (h) => [h, await of(h)])));
    const running = await observe((h) => this.running(h));
    const served = await observe((h) => this.versionsServed(h));
    const lockLeft = await observe((h) => this.lockLeft(h));
    await f.settle?.(this);
    const c = await this.upUnderLoad({ flags: f.convergeFlags });
    const converge = {
      ...c,
      out: c.up.stdout + c.up.stderr,
      running: await observe((h) => this.running(h)),
      served: await observe((h) => this.versionsServed(h)),
    };
    return { ...played, out: played.up.stdout + played.up.stderr, version: this.version, before, running, served, lockLeft, converge, seconds: Math.round((Date.now() - t0) / 1000) };
  }
}

/** Ends every fault the scenarios inject (idempotent). */
export function endFaults() {
  for (const h of WEB) for (const what of ["net", "ssh", "api"] as const) fault(h, what, "start");
  registryFault("start");
}

/** Failed requests on a host: non-2xx (404 allowed where the role left), errors, timeouts. */
export function failedOn(load: LoadByHost, h: string, routeGone = false): number {
  return (load.get(h) ?? []).reduce((n, l) => n + (routeGone ? 0 : l.non2xx) + l.errors + l.timeouts, 0);
}

export function totalOn(load: LoadByHost, h: string): number {
  return (load.get(h) ?? []).reduce((n, l) => n + l.total, 0);
}

/** The first few failures on a host, for a test's message. */
export function failuresOn(load: LoadByHost, h: string): string {
  return JSON.stringify((load.get(h) ?? []).map((l) => ({ ...l, samples: l.samples.slice(0, 5) })));
}

/** Kills a process group and whatever still runs in the project's directory (plugins run in
 * process groups of their own). */
function killAll(child: ChildProcess, dir: string) {
  process.kill(-child.pid!, "SIGKILL");
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readlinkSync(`/proc/${pid}/cwd`) === dir) process.kill(Number(pid), "SIGKILL");
    } catch {
      /* gone, or not ours to read */
    }
  }
}

const STARTING_ON_APP1 = /\[kamal\] app1: starting bench-web-/;

export const FAULTS = {
  cut50: {
    title: "network cut 50 s on app1 mid-swap",
    cutOff: ["app1"],
    run: (rig) => rig.swapWithCut(50),
  },
  cut120: {
    title: "network cut 120 s on app1 mid-swap",
    cutOff: ["app1"],
    run: (rig) => rig.swapWithCut(120),
  },
  sshdDown: {
    title: "sshd down on app1 when the up starts",
    run: async (rig) => {
      fault("app1", "ssh", "stop");
      return rig.swapUnderLoad({ afterUp: () => fault("app1", "ssh", "start") });
    },
  },
  unreachable: {
    title: "app1 unreachable when the up starts",
    cutOff: ["app1"],
    run: async (rig) => {
      fault("app1", "net", "stop");
      return rig.swapUnderLoad({ afterUp: () => fault("app1", "net", "start") });
    },
  },
  dockerdRestart: {
    title: "dockerd restarted on app1 mid-swap",
    // Traefik runs in that engine: it goes down with it.
    cutOff: ["app1"],
    convergeFlags: ["--refresh"],
    run: async (rig) => {
      let restarted: Promise<void> = Promise.resolve();
      const played = await rig.swapUnderLoad({
        when: STARTING_ON_APP1,
        at: () => {
          restarted = sleep(300).then(() => {
            fault("app1", "docker", "stop");
            fault("app1", "docker", "start");
          });
        },
      });
      await restarted;
      // What the engine restarted settles before the hosts are observed.
      await sleep(3000);
      return played;
    },
  },
  sigint: {
    title: "Ctrl-C (SIGINT) of pulumi mid-swap",
    convergeFlags: ["--refresh"],
    run: async (rig) => {
      await rig.set(rig.main, { healthyAfter: "4" });
      try {
        return await rig.swapUnderLoad({ when: STARTING_ON_APP1, at: (child) => child.kill("SIGINT") });
      } finally {
        await rig.set(rig.main, { healthyAfter: "2" });
      }
    },
  },
  killed: {
    title: "kill -9 of pulumi mid-swap",
    run: async (rig) => {
      // The new version answers its health check after 4 s: the kill lands mid-swap.
      await rig.set(rig.main, { healthyAfter: "4" });
      let atKill: Promise<string[]> = Promise.resolve([]);
      const played = await rig.swapUnderLoad({
        when: STARTING_ON_APP1,
        detached: true,
        at: (child) => {
          atKill = sleep(1500).then(async () => {
            killAll(child, rig.main.dir);
            await sleep(500);
            return rig.running("app1");
          });
        },
      });
      return { ...played, notes: { runningOnApp1AfterKill: await atKill } };
    },
    settle: async (rig) => {
      await rig.set(rig.main, { healthyAfter: "2" });
      // A killed update leaves Pulumi's stack lock behind: clearing it is the operator's first step.
      await rig.main.run(["cancel", "--yes", "--stack", rig.main.stack]);
    },
  },
  registryDown: {
    title: "registry down for a version not on the hosts",
    run: async (rig) => {
      const next = other(rig.version);
      // Retained containers keep their images: those of that version go first.
      for (const h of WEB) {
        await (await rig.conn(h)).exec(onHost(`docker ps -aq --filter label=service=bench --filter label=version=${next} | xargs -r docker rm -f >/dev/null; docker rmi ${sandbox().images.app[next as "v1" | "v2"]}`));
      }
      registryFault("stop");
      return rig.swapUnderLoad({ afterUp: () => registryFault("start") });
    },
  },
  apiUnreachable: {
    title: "Traefik's API unreachable on both hosts",
    run: async (rig) => {
      for (const h of WEB) fault(h, "api", "stop");
      return rig.swapUnderLoad({ afterUp: () => WEB.forEach((h) => fault(h, "api", "start")) });
    },
  },
  hostRemoved: {
    title: "app2 removed from the role (drain)",
    routeGone: ["app2"],
    run: async (rig) => {
      await rig.set(rig.main, { hosts: '["app1"]' });
      return rig.upUnderLoad();
    },
    // Back in the role: app2 answers 404 until its container serves again.
    settle: (rig) => rig.set(rig.main, { hosts: JSON.stringify(WEB) }),
  },
  twoStacks: {
    title: "two stacks deploying one service to app1 at once",
    convergeFlags: ["--refresh"],
    run: async (rig) => {
      const second = FaultRig.project("faults-other");
      await second.ensureStack();
      // The main stack goes to the other version; this stack deploys the one serving now, so
      // whichever swapped last shows on app1.
      const secondVersion = rig.version;
      await rig.set(second, { hosts: '["app1"]', version: secondVersion, token: TOKEN, deadline: "20", healthyAfter: "2", traefik: "false" });
      // The main stack's new container answers after 75 s; the second starts while the main
      // one holds the lock (its engine needs a few seconds to get there: 37 s once, in a CI
      // run with three test lanes busy on two cores, when the main one held it for 40 s).
      await rig.set(rig.main, { healthyAfter: "75", deadline: "100" });
      let secondUp: Promise<PulumiRun> | undefined;
      const played = await rig.swapUnderLoad({ when: STARTING_ON_APP1, at: () => (secondUp = second.up()) });
      const secondRun = await secondUp!;
      // Its state goes (the hosts stay as they are); the main stack converges app1 back.
      const removed = await second.run(["stack", "rm", "--force", "--yes", "--stack", second.stack]);
      return { ...played, notes: { secondVersion, second: secondRun, secondRemoved: removed.code === 0 } };
    },
    settle: (rig) => rig.set(rig.main, { healthyAfter: "2", deadline: "20" }),
  },
  manualLock: {
    title: "a deploy lock taken on purpose (kamal lock acquire) on app1",
    run: async (rig) => {
      const details = Buffer.from("Locked by: Jane Doe at 2026-11-23T16:59:01Z\nVersion: 3f2a9c1\nMessage: db migration").toString("base64");
      await (await rig.conn("app1")).exec(onHost(`mkdir -p .kamal/lock-bench && echo "${details}" > .kamal/lock-bench/details`));
      return rig.swapUnderLoad();
    },
    // `kamal lock release` does exactly this.
    settle: async (rig) => void (await (await rig.conn("app1")).exec(onHost("rm .kamal/lock-bench/details && rm -r .kamal/lock-bench"))),
  },
  traefikRefused: {
    title: "a Traefik change Traefik refuses (it exits at once)",
    run: async (rig) => {
      // Traefik exits at once on an option it does not know.
      await rig.set(rig.main, { traefikArgs: JSON.stringify({ "no-such-option": "1" }) });
      const played = await rig.upUnderLoad();
      return { ...played, notes: { traefikOnApp1: (await (await rig.conn("app1")).exec(onHost("docker ps -a --filter name=traefik --format '{{.Names}} {{.State}}'"))).stdout.trim().split("\n").sort() } };
    },
    settle: (rig) => rig.set(rig.main, { traefikArgs: "{}" }),
  },
} satisfies Record<string, Fault>;

export type FaultName = keyof typeof FAULTS;

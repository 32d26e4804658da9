/**
 * A team deploying one stack from two checkouts, its state on the sandbox's S3 server
 * (SeaweedFS), each checkout with its own PULUMI_HOME, as two laptops or a laptop and CI:
 * a stack moved from the file backend init makes to S3 with its history and no change on the
 * hosts; deploys, a rollback and a refresh taking turns under load; two deploys at once (the
 * second refused naming the first); one deployer killed with kill -9 mid-swap and the other's
 * deploy converging; the S3 server stopped as a deploy starts. Runs in lane four (app1 and
 * app2 are app8 and app9, testbed/lane.ts).
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, out, runCli } from "../helpers/cli";
import { SshPool } from "../../provider/ssh/pool";
import { httpGet } from "../../testbed/http";
import { startLoad, type Load } from "../../testbed/load";
import { host, onHost, repoRoot, sandbox, target } from "../../testbed/sandbox";

const sb = sandbox();
const pool = new SshPool();
const WEB = ["app1", "app2"] as const;
const prefix = `team-${Date.now().toString(36)}`;
const S3_URL = `s3://${sb.s3.bucket}/${prefix}?endpoint=http://${sb.s3.endpoint}&region=${sb.s3.region}&s3ForcePathStyle=true`;

interface Checkout {
  dir: string;
  env: NodeJS.ProcessEnv;
}
let a: Checkout;
let b: Checkout;

async function sh(h: string, command: string): Promise<string> {
  return (await (await pool.connect(target(h))).exec(onHost(command))).stdout.trim();
}

/** A checkout's environment: its own PULUMI_HOME (another laptop), the team's passphrase and
 * S3 credentials, the backend from Pulumi.yaml. */
function envFor(name: string): NodeJS.ProcessEnv {
  const { PULUMI_BACKEND_URL: _b, ...inherited } = process.env;
  const home = mkdtempSync(path.join(repoRoot, `test/.work/${name}-home-`));
  return {
    ...inherited,
    PULUMI_HOME: home,
    PULUMI_CONFIG_PASSPHRASE: "team-passphrase",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    AWS_ACCESS_KEY_ID: sb.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: sb.s3.secretAccessKey,
  };
}

/** A Kamal 1 project on this lane's hosts and registry, committed to git. */
function kamalProject(): string {
  const dir = mkdtempSync(path.join(repoRoot, "test/.work/team-a-"));
  mkdirSync(path.join(dir, "config"));
  writeFileSync(
    path.join(dir, "config/deploy.yml"),
    [
      "service: kpteam",
      "image: kp/testapp",
      "servers:",
      "  web:",
      ...WEB.map((h) => `    - ${host(h).address}`),
      "registry:",
      `  server: ${sb.registry.address}`,
      `  username: ${sb.registry.username}`,
      "  password:",
      "    - KAMAL_REGISTRY_PASSWORD",
      "healthcheck:",
      "  cmd: /app probe http://127.0.0.1/up",
      "  port: 80",
      "  interval: 1s",
      "  max_attempts: 7",
      "stop_wait_time: 10",
      "traefik:",
      `  image: ${sb.images.traefik}`,
      "builder:",
      "  multiarch: false",
      "",
    ].join("\n"),
  );
  writeFileSync(path.join(dir, ".env"), `KAMAL_REGISTRY_PASSWORD=${sb.registry.password}\n`);
  writeFileSync(path.join(dir, ".gitignore"), ".env\n");
  git(dir, "init", "-q");
  commit(dir, "a Kamal project");
  return dir;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.email=team@example.com", "-c", "user.name=team", ...args], { cwd: dir, encoding: "utf8" });
}

function commit(dir: string, message: string) {
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", message);
}

function cli(args: string[], c: Checkout) {
  return runCli(args, c);
}

function pulumi(args: string[], c: Checkout, env: NodeJS.ProcessEnv = {}) {
  return spawnSync("pulumi", [...args, "--non-interactive"], { cwd: c.dir, env: { ...c.env, ...env }, encoding: "utf8" });
}

/** The updates `pulumi stack history` lists, oldest first. */
function history(c: Checkout): { kind: string; result: string; message: string; config?: Record<string, { value?: string }> }[] {
  const r = pulumi(["stack", "history", "--json", "--stack", "production"], c);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { kind: string; result: string; message: string }[]).reverse();
}

async function serving(): Promise<string[]> {
  return Promise.all(WEB.map(async (h) => (await httpGet(`http://${host(h).address}/`)).body.trim().split(" ")[0]));
}

/** Load on both hosts while `fn` runs: every request must succeed. */
async function underLoad<T>(fn: () => Promise<T>): Promise<T> {
  const loads: Load[] = WEB.map((h) => startLoad({ url: `http://${host(h).address}/`, rate: 50, retryOnStaleConnection: true }));
  let result: T;
  try {
    result = await fn();
  } finally {
    const r = await Promise.all(loads.map((l) => l.stop()));
    for (const x of r) {
      expect(x.total).toBeGreaterThan(20);
      expect(x.non2xx + x.errors + x.timeouts, JSON.stringify(x.samples)).toBe(0);
    }
  }
  return result!;
}

/** `pulumi-kamal ARGS` in the background, in a process group of its own (to kill -9). */
function background(args: string[], c: Checkout): { child: ChildProcess; output: () => string; done: Promise<number> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: c.dir, env: c.env, detached: true });
  let text = "";
  child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const done = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
  return { child, output: () => text, done };
}

async function until(what: string, ok: () => boolean, ms = 60_000) {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Processes whose working directory is under `dir` (the killed deployer's provider and program). */
function processesIn(dir: string): number[] {
  const r = spawnSync("bash", ["-c", `for p in /proc/[0-9]*; do [ "$(readlink $p/cwd 2>/dev/null)" = ${JSON.stringify(dir)} ] && echo \${p#/proc/}; done`], { encoding: "utf8" });
  return r.stdout.split("\n").filter(Boolean).map(Number);
}

/** The dynamic providers a checkout's deploys started (node …/dynamic-provider). */
function providersOf(dir: string): number[] {
  const r = spawnSync("pgrep", ["-f", `${dir}/\\.kamal/pulumi/node_modules/@pulumi/pulumi/cmd/dynamic-provider`], { encoding: "utf8" });
  return r.stdout.split("\n").filter(Boolean).map(Number);
}

/** Stops or starts the S3 server (asynchronously: the load keeps running meanwhile). */
function s3Fault(action: "stop" | "start"): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "fault", "s3", action], (e, _o, err) => (e ? reject(new Error(`fault s3 ${action}: ${err}`)) : resolve())),
  );
}

beforeAll(async () => {
  for (const h of WEB) await sh(h, "docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
  a = { dir: kamalProject(), env: envFor("team-a") };
});

afterAll(async () => {
  await s3Fault("start");
  if (b) {
    const r = pulumi(["destroy", "--yes", "--skip-preview", "--stack", "production"], b, { PULUMI_KAMAL_BUILD: "skip" });
    if (r.status !== 0) console.error(r.stdout + r.stderr);
  }
  pool.closeAll();
});

describe("one stack, two checkouts, state on an S3-compatible server", () => {
  it("a stack deployed from init's file backend moves to S3 with its history; nothing on the hosts changes", async () => {
    // A bucket that does not exist: said before anything is written.
    const missing = await cli(["init", "--known-hosts", sb.hosts[0].knownHostsPath, "--backend", S3_URL.replace(`s3://${sb.s3.bucket}/`, "s3://kp-no-such-bucket/")], a);
    expect(missing.code, out(missing)).toBe(2);
    expect(missing.stderr).toMatch(/^pulumi-kamal init: the backend s3:\/\/kp-no-such-bucket\/team-\S+ cannot be used: .*NoSuchBucket.*; nothing was written\n$/);
    expect(existsSync(path.join(a.dir, "Pulumi.yaml"))).toBe(false);
    const init = await cli(["init", "--known-hosts", sb.hosts[0].knownHostsPath, "--ssh-key", sb.hosts[0].privateKeyPath], a);
    expect(init.code, out(init)).toBe(0);
    const first = await cli(["deploy", "--version", "v1", "--skip-push"], a);
    expect(first.code, out(first)).toBe(0);
    expect(await serving()).toEqual(["v1", "v1"]);

    const moved = await cli(["state", "move", "--to", S3_URL], a);
    expect(moved.code, out(moved)).toBe(0);
    expect(moved.stdout).toMatch(new RegExp(`^Stack production: \\d+ objects copied from file://\\./\\.kamal/pulumi/state to s3://${sb.s3.bucket}/${prefix} \\(checkpoint, history, backups\\)$`, "m"));
    expect(readFileSync(path.join(a.dir, "Pulumi.yaml"), "utf8")).toContain(`backend:\n  url: ${S3_URL}\n`);
    // The history came along: the deploy is listed from S3.
    expect(history(a).map((h) => [h.kind, h.result, h.message])).toEqual([["update", "succeeded", "pulumi-kamal deploy v1"]]);
    // Nothing to change: the same containers, read from the new backend.
    const same = pulumi(["up", "--yes", "--skip-preview", "--expect-no-changes", "--message", "after the move", "--stack", "production"], a, { PULUMI_KAMAL_BUILD: "skip" });
    expect(same.status, same.stdout + same.stderr).toBe(0);
    // A second move finds the stack there already.
    const again = await cli(["state", "move", "--to", S3_URL], a);
    expect(again).toMatchObject({ code: 2 });
    expect(again.stderr).toContain(`the stacks are in s3://${sb.s3.bucket}/${prefix} already`);
    commit(a.dir, "pulumi-kamal init; state on S3");
  });

  it("a teammate's clone joins; deploys, a rollback and a refresh take turns under load; the history lists each", async () => {
    const dir = path.join(path.dirname(a.dir), `team-b-${prefix}`);
    git(path.dirname(a.dir), "clone", "-q", a.dir, dir);
    writeFileSync(path.join(dir, ".env"), readFileSync(path.join(a.dir, ".env")));
    // B is a CI runner: no key file where the stack's settings say, the key in the environment.
    b = { dir, env: { ...envFor("team-b"), PULUMI_KAMAL_SSH_KEY: readFileSync(sb.hosts[0].privateKeyPath, "utf8") } };
    const join = await cli(["init"], b);
    expect(join.code, out(join)).toBe(0);
    expect(join.stdout).toContain(`Stack production: in s3://${sb.s3.bucket}/${prefix}\nSelected stack production\n`);
    expect(pulumi(["config", "set", "sshKeyPath", "/nonexistent/id_ed25519", "--stack", "production"], b).status).toBe(0);

    await underLoad(async () => {
      // As CI runs it: the result as JSON on stdout, the progress on stderr.
      const deployB = await cli(["deploy", "--version", "v2", "--skip-push", "--json"], b);
      expect(deployB.code, out(deployB)).toBe(0);
      const result = JSON.parse(deployB.stdout) as { changes: Record<string, number> };
      expect(result).toMatchObject({ command: "deploy", stack: "production", result: "succeeded", version: "v2", previous: "v1" });
      // The two app containers swapped (and B's own key recorded where A's path was).
      expect(result.changes.updated).toBeGreaterThanOrEqual(2);
      expect(deployB.stderr).toContain("Deploying version v2 (stack production, config version)\n");
      expect(await serving()).toEqual(["v2", "v2"]);
      const rollbackA = await cli(["rollback", "v1"], a);
      expect(rollbackA.code, out(rollbackA)).toBe(0);
      expect(await serving()).toEqual(["v1", "v1"]);
      const refreshB = pulumi(["refresh", "--yes", "--skip-preview", "--message", "refresh by b", "--stack", "production"], b);
      expect(refreshB.status, refreshB.stderr).toBe(0);
      const deployA = await cli(["deploy", "--version", "v2", "--skip-push"], a);
      expect(deployA.code, out(deployA)).toBe(0);
    });
    expect(await serving()).toEqual(["v2", "v2"]);
    // The commands that read the hosts log in with B's key too, whoever deployed last.
    const details = await cli(["details"], b);
    expect(details.code, out(details)).toBe(0);
    expect(details.stdout).toMatch(/kpteam +web +\S+ .* v2 +kpteam-web-v2 +running/);
    // Whoever asks, the history is the stack's: every deploy, the rollback and the refresh.
    const seen = history(b).map((h) => [h.kind, h.result, h.message]);
    expect(seen).toEqual(history(a).map((h) => [h.kind, h.result, h.message]));
    expect(seen.slice(-4)).toEqual([
      ["update", "succeeded", "pulumi-kamal deploy v2"],
      ["update", "succeeded", "pulumi-kamal rollback v1"],
      ["refresh", "succeeded", "refresh by b"],
      ["update", "succeeded", "pulumi-kamal deploy v2"],
    ]);
  });

  it("two deploys at once: the second is refused naming who holds the stack, nothing it did; the first completes", async () => {
    // The first deploy's new containers answer their health check only after 20 s (an env of
    // A's own deploy.yml, uncommitted): it surely holds the stack when the second starts,
    // however slowly the machine starts the second's engine.
    const yml = path.join(a.dir, "config/deploy.yml");
    const committed = readFileSync(yml, "utf8");
    writeFileSync(yml, committed.replace("healthcheck:\n", "env:\n  clear:\n    TESTAPP_HEALTHY_AFTER: 20\nhealthcheck:\n"));
    try {
      await concurrently();
    } finally {
      writeFileSync(yml, committed);
    }
    expect(await serving()).toEqual(["v1", "v1"]);
  });

  async function concurrently() {
    await underLoad(async () => {
      const first = background(["deploy", "--version", "v1", "--skip-push"], a);
      // The first holds the stack's lock once its update began.
      await until("the first deploy's update", () => /starting kpteam-web-v1/.test(first.output()));
      const second = await cli(["deploy", "--version", "v2", "--skip-push", "--json"], b);
      expect(second.code, out(second)).toBe(3);
      expect(JSON.parse(second.stdout)).toMatchObject({ command: "deploy", result: "locked", exitCode: 3 });
      expect(second.stderr).toMatch(
        /\npulumi-kamal deploy: stack production is being changed by \S+@\S+ \(pid \d+\) since \S+: its backend holds the stack's lock, so this deploy did not start \(nothing changed\)\.\nWait for that deploy to end and run this again\. If it is gone \(killed, its machine lost\), clear the lock with `pulumi-kamal unlock` and deploy again: the next deploy converges\.\n$/,
      );
      expect(await first.done, first.output()).toBe(0);
    });
  }

  it("kill -9 of one deployer mid-swap: its provider reverts and exits; the other's deploy clears the lock, reads the hosts and converges", async () => {
    await underLoad(async () => {
      const killed = background(["deploy", "--version", "v2", "--skip-push"], a);
      await until("the swap to begin", () => /starting kpteam-web-v2/.test(killed.output()));
      process.kill(-killed.child.pid!, "SIGKILL");
      await killed.done;
      // The provider (a process group of its own) sees its engine gone: it goes back to v1,
      // releases the hosts' deploy locks and exits.
      await until("the killed deploy's provider to exit", () => providersOf(a.dir).length === 0, 30_000);
      // Pulumi's language host outlives its engine (its own process group, idle): a crashed
      // machine would not keep it either.
      for (const pid of [...processesIn(a.dir), ...processesIn(path.join(a.dir, ".kamal/pulumi"))]) process.kill(pid, "SIGKILL");
      expect(await serving()).toEqual(["v1", "v1"]);
      for (const h of WEB) expect(await sh(h, "ls -d /root/.kamal/lock-kpteam 2>/dev/null || echo none")).toBe("none");

      const next = await cli(["deploy", "--version", "v2", "--skip-push"], b);
      expect(next.code, out(next)).toBe(0);
      expect(next.stdout).toMatch(/^The stack's lock was left by a deploy on this machine that no longer runs \(pid \d+, since \S+\): clearing it, and reading what that deploy left on the hosts\nStack production: lock cleared \(pulumi cancel\)\nStack production: state read from the hosts \(pulumi refresh\)/m);
    });
    expect(await serving()).toEqual(["v2", "v2"]);
    const same = pulumi(["preview", "--expect-no-changes", "--stack", "production"], b, { PULUMI_KAMAL_BUILD: "skip" });
    expect(same.status, same.stdout + same.stderr).toBe(0);
  });

  it("the S3 server stopped as a deploy starts: the error names the backend, the old version serves; the next deploy converges", async () => {
    await underLoad(async () => {
      const deploy = background(["deploy", "--version", "v1", "--skip-push"], a);
      await until("the deploy to start", () => /Deploying version v1/.test(deploy.output()));
      await s3Fault("stop");
      expect(await deploy.done, deploy.output()).toBe(1);
      expect(deploy.output()).toContain(`pulumi-kamal deploy: failed:\nthe state backend s3://${sb.s3.bucket}/${prefix} failed`);
      expect(await serving()).toEqual(["v2", "v2"]);
      await s3Fault("start");
      const next = await cli(["deploy", "--version", "v1", "--skip-push"], b);
      expect(next.code, out(next)).toBe(0);
    });
    expect(await serving()).toEqual(["v1", "v1"]);
    // The checkout that deployed last has the version in its stack settings (A's says v2, its
    // failed deploy's previous version: a checkout's version is the one it deployed last).
    const same = pulumi(["preview", "--expect-no-changes", "--stack", "production"], b, { PULUMI_KAMAL_BUILD: "skip" });
    expect(same.status, same.stdout + same.stderr).toBe(0);
  });
});

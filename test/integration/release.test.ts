/**
 * Release safety with the real Pulumi engine, under load: the release command (once per
 * version, before any swap; a failure changes nothing), Kamal 2's container env, the watch
 * window (a version that breaks after turning healthy is swapped back on every host), the
 * canary (a failing canary leaves every other host untouched) and an exclusive role (never two
 * of its containers at once). Runs in lane three (testbed/lane.ts).
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { httpGet } from "../../testbed/http";
import { startLoad, type LoadResult } from "../../testbed/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, repoRoot, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
let web = ["app1", "app2"];
const SECRET = "rel-secret-5d0c2b9e";
const PASSING = ["sh", "-c", 'echo "migrating to $KAMAL_VERSION on $KAMAL_HOST"; echo "secret is $RELEASE_SECRET"; echo "$KAMAL_VERSION" >> /shared/releases.log'];
const FAILING = ["sh", "-c", 'echo "step one of two"; echo "secret is $RELEASE_SECRET"; echo "migration 42 failed" >&2; exit 3'];
let p: PulumiProject;

const out = (r: PulumiRun) => r.stdout + r.stderr;
const HOOKS_LOG = path.join(repoRoot, "test/.work/release-hooks.log");
const hookRuns = () => (existsSync(HOOKS_LOG) ? readFileSync(HOOKS_LOG, "utf8").split("\n").filter(Boolean) : []);

async function set(key: string, value: string, secret = false) {
  const r = await p.run(["config", "set", secret ? "--secret" : "--plaintext", "--stack", p.stack, key, value]);
  expect(r.code, r.stderr).toBe(0);
}
async function unset(key: string) {
  await p.run(["config", "rm", "--stack", p.stack, key]);
}

async function sh(h: string, command: string): Promise<string> {
  return (await (await pool.connect(target(h))).exec(onHost(command))).stdout.trim();
}

async function served(h: string): Promise<{ version: string; container: string; env?: Record<string, string> }> {
  const r = await httpGet(`http://${host(h).address}/version`);
  expect(r.status, `${h}: ${r.body}`).toBe(200);
  return JSON.parse(r.body);
}

/** Every container of the service on a host (but a failed release's, kept for its logs), id
 * and name: what "untouched" compares. */
const containers = (h: string) => sh(h, "docker ps -a --filter label=service=rel --format '{{.ID}} {{.Names}} {{.State}}' | grep -v -- -release- | sort");
const releases = () => sh("app1", "cat /root/kp-rel/releases.log 2>/dev/null || true").then((s) => s.split("\n").filter(Boolean));

async function underLoad<T>(fn: () => Promise<T>, path = "/version"): Promise<{ result: T; load: LoadResult[] }> {
  const loads = web.flatMap((h) => [
    startLoad({ url: `http://${host(h).address}${path}`, rate: 60, connections: 3 }),
    startLoad({ url: `http://${host(h).address}${path}`, rate: 20, newConnections: true }),
  ]);
  await new Promise((r) => setTimeout(r, 300));
  const result = await fn();
  await new Promise((r) => setTimeout(r, 300));
  return { result, load: await Promise.all(loads.map((l) => l.stop())) };
}

/** Failed requests by who failed them, over every load. */
function failedBy(load: LoadResult[]): Record<string, number> {
  const by: Record<string, number> = {};
  for (const l of load) for (const [k, n] of Object.entries(l.failedBy)) by[k] = (by[k] ?? 0) + n;
  return by;
}
const total = (load: LoadResult[]) => load.reduce((n, l) => n + l.total, 0);

beforeAll(async () => {
  for (const h of ["app1", "app2", "app3"]) await sh(h, "docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal /root/kp-rel");
  const dir = scratchProject("release", {
    "Pulumi.yaml": "name: kp-release\nruntime: nodejs\n",
    "package.json": JSON.stringify({ name: "kp-release", main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/release"))};\n`,
  });
  p = new PulumiProject(dir, "test");
  await p.ensureStack();
  await set("version", "v1");
  await set("releaseSecret", SECRET, true);
  await set("releaseCmd", JSON.stringify(PASSING));
  rmSync(HOOKS_LOG, { force: true });
  await set("beforeDeploy", `echo "before $KAMAL_SERVICE_VERSION $KAMAL_HOSTS lock=$KAMAL_LOCK" >> ${HOOKS_LOG}`);
  await set("afterDeploy", `echo "after $KAMAL_SERVICE_VERSION runtime=$KAMAL_RUNTIME" >> ${HOOKS_LOG}`);
});

afterAll(async () => {
  await p?.destroy();
  pool.closeAll();
});

describe("the release command", () => {
  it("runs before the first deploy, with Kamal's env and the role's secret env (redacted in its output)", async () => {
    const up = await p.up();
    expect(up.code, out(up)).toBe(0);
    expect(out(up)).toContain(`release: migrating to v1 on ${host("app1").address}`);
    expect(out(up)).toContain("release: secret is [REDACTED]");
    expect(out(up)).not.toContain(SECRET);
    expect(await releases()).toEqual(["v1"]);
    for (const h of web) {
      const s = await served(h);
      expect(s).toMatchObject({ version: "v1", container: "rel-web-prod-v1", env: { KAMAL_HOST: host(h).address } });
    }
    expect(await sh("app1", "docker exec rel-web-prod-v1 sh -c 'echo $KAMAL_DESTINATION $KAMAL_VERSION $KAMAL_CONTAINER_NAME'")).toBe("prod v1 rel-web-prod-v1");
    // The Service's local hooks ran around the deploy.
    const [before, after] = hookRuns();
    expect(before).toBe(`before rel@v1 ${host("app1").address},${host("app2").address} lock=false`);
    expect(after).toMatch(/^after rel@v1 runtime=\d+$/);
    expect(out(up).indexOf("local: pre-deploy hook done")).toBeLessThan(out(up).indexOf("release: migrating"));
    expect(out(up).indexOf("local: running the post-deploy hook")).toBeGreaterThan(out(up).indexOf("app2: rel-web-prod-v1 is serving"));
  });

  it("a preview says it will run, and that the exclusive role stops its container first", async () => {
    await set("version", "v2");
    const preview = await p.preview();
    expect(preview.code, out(preview)).toBe(0);
    // The Release resource's own entry (up to the next resource) shows the version it runs for.
    expect(out(preview)).toMatch(/kamal:Release: \(update\)(\n(?!\s+[~+-] pulumi).*)*\n\s+~ version\s+: "v1" => "v2"/);
    expect(out(preview)).toContain("stops the running rel-workers-prod container before starting the new one (exclusive: never two at once)");
    expect(await releases()).toEqual(["v1"]);
  });

  it("a failing one stops the deploy with its output; no container changed, state keeps the previous version", async () => {
    const before = await Promise.all(web.map(containers));
    await set("releaseCmd", JSON.stringify(FAILING));
    const { result: up, load } = await underLoad(() => p.up());
    expect(up.code, out(up)).not.toBe(0);
    const text = out(up);
    expect(text).toContain("app1: running the release command: it exited with code 3");
    expect(text).toContain("no container was swapped");
    expect(text).toMatch(/--- last output of rel-web-prod-release-v2 ---\n(.*\n)*.*step one of two/);
    expect(text).toContain("migration 42 failed");
    expect(text).toContain("secret is [REDACTED]");
    expect(text).not.toContain(SECRET);
    expect(text).not.toMatch(/starting rel-(web|workers)-prod-v2/);
    expect(await Promise.all(web.map(containers))).toEqual(before);
    expect(await sh("app1", "docker ps -a --filter label=kamal.release=v2 --format '{{.Names}} {{.State}}'")).toBe("rel-web-prod-release-v2 exited");
    expect(failedBy(load)).toEqual({});
    expect(total(load)).toBeGreaterThan(100);
    const outputs = JSON.parse((await p.run(["stack", "output", "--json", "--stack", p.stack])).stdout);
    expect(outputs).toMatchObject({ versions: { app1: "v1", app2: "v1" }, releasedVersion: "v1" });
  });

  it("a passing one runs exactly once per version across three ups, before any swap; the exclusive role never runs twice", async () => {
    await set("releaseCmd", JSON.stringify(PASSING));
    // How many workers run at once, sampled through the whole deploy.
    let most = 0;
    let sampling = true;
    const conn = await pool.connect(target("app1"));
    const sampler = (async () => {
      while (sampling) {
        const n = Number((await conn.exec(onHost("docker ps -q --filter label=service=rel --filter label=role=workers | wc -l"))).stdout.trim());
        most = Math.max(most, n);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const { result: up, load } = await underLoad(() => p.up());
    sampling = false;
    await sampler;
    expect(up.code, out(up)).toBe(0);
    const text = out(up);
    expect(text.indexOf("release: done for v2")).toBeGreaterThan(0);
    expect(text.indexOf("release: done for v2")).toBeLessThan(text.indexOf("starting rel-web-prod-v2"));
    expect(text).toContain("stopping rel-workers-prod-v1 before starting rel-workers-prod-v2 (exclusive");
    expect(most).toBe(1);
    expect(failedBy(load)).toEqual({});
    for (const h of web) expect((await served(h)).version).toBe("v2");

    expect(hookRuns().filter((l) => l.startsWith("after"))).toEqual([expect.stringMatching(/^after rel@v1 /), expect.stringMatching(/^after rel@v2 /)]);
    const runs = hookRuns().length;
    const again = await p.up();
    expect(again.code, out(again)).toBe(0);
    expect(out(again)).not.toContain("release:");
    expect(hookRuns()).toHaveLength(runs);
    // A change that only records (the stop wait time) runs nothing either.
    await set("stopWaitTime", "4");
    const third = await p.up();
    expect(third.code, out(third)).toBe(0);
    expect(out(third)).not.toContain("release:");
    expect(await releases()).toEqual(["v1", "v2"]);
  });
});

describe("the watch window", () => {
  // Whatever a test here asserts, the later ones run without a watch.
  afterAll(() => unset("watch"));

  it("a version that fails 10 s after turning healthy goes back to the previous one on every host, inside its watch", async () => {
    await set("version", "v1");
    await set("env", JSON.stringify({ TESTAPP_FAIL_AFTER: "10" }));
    await set("watch", "30s");
    const { result: up, load } = await underLoad(() => p.up());
    expect(up.code, out(up)).not.toBe(0);
    const text = out(up);
    for (const h of web) {
      expect(text).toMatch(new RegExp(`${h}: watching rel-web-prod-v1 \\(30s\\): container rel-web-prod-v1 failed its health check \\(/up\\) 3 times in a row [0-9.]+s after it took traffic, inside its 30s watch`));
      expect((await served(h)).version).toBe("v2");
    }
    expect(text).toContain("rel-web-prod-v2 keeps serving (traffic went back to it)");
    expect(text).toContain("--- last log lines of rel-web-prod-v1 ---");
    const outputs = JSON.parse((await p.run(["stack", "output", "--json", "--stack", p.stack])).stdout);
    expect(outputs.versions).toEqual({ app1: "v2", app2: "v2" });
    // Only the failing version itself failed requests: none failed on the way back.
    const by = failedBy(load);
    expect(Object.keys(by).filter((k) => k !== "v1"), JSON.stringify(by)).toEqual([]);
    expect(total(load)).toBeGreaterThan(500);
  });

  it("a version that crashes 8 s after turning healthy (the engine restarts it) goes back too", async () => {
    await set("env", JSON.stringify({ TESTAPP_CRASH_AFTER: "8" }));
    const { result: up, load } = await underLoad(() => p.up());
    expect(up.code, out(up)).not.toBe(0);
    const text = out(up);
    expect(text).toMatch(/app[12]: watching rel-web-prod-v1 \(30s\): container rel-web-prod-v1 (restarted|exited|restarting) [0-9.]+s after it took traffic, inside its 30s watch/);
    for (const h of web) expect((await served(h)).version).toBe("v2");
    const outputs = JSON.parse((await p.run(["stack", "output", "--json", "--stack", p.stack])).stdout);
    expect(outputs.versions).toEqual({ app1: "v2", app2: "v2" });
    // What failed is what the crash cut short (a request it was answering, one the proxy
    // sent it as it died): a few, and none once the previous version is back.
    const failed = Object.values(failedBy(load)).reduce((n, k) => n + k, 0);
    expect(failed, JSON.stringify(failedBy(load))).toBeLessThan(total(load) * 0.02);
    const { load: after } = await underLoad(() => new Promise((r) => setTimeout(r, 3000)));
    expect(failedBy(after)).toEqual({});
  });
});

describe("a canary", () => {
  it("that fails is swapped back, and no other host ever runs the new version", async () => {
    const app2Before = await containers("app2");
    await set("canaryHosts", "1");
    await set("canaryWatch", "20s");
    await set("env", JSON.stringify({ TESTAPP_FAIL_AFTER: "4" }));
    const { result: up, load } = await underLoad(() => p.up());
    expect(up.code, out(up)).not.toBe(0);
    expect(out(up)).toMatch(/app1: watching rel-web-prod-v1 \(20s\): container rel-web-prod-v1 failed its health check/);
    expect(out(up)).not.toMatch(/app2: (starting|pulling)/);
    expect(await containers("app2")).toBe(app2Before);
    for (const h of web) expect((await served(h)).version).toBe("v2");
    expect(Object.keys(failedBy(load)).filter((k) => k !== "v1")).toEqual([]);
  });

  it("that stays healthy for its watch is followed by the rest", async () => {
    await unset("env");
    await set("canaryWatch", "6s");
    const { result: up, load } = await underLoad(() => p.up());
    expect(up.code, out(up)).toBe(0);
    expect(out(up)).toContain("app1: rel-web-prod-v1 stayed healthy for its 6s watch");
    const created = await Promise.all(web.map((h) => sh(h, "docker inspect --format '{{.Created}}' rel-web-prod-v1").then((t) => Date.parse(t))));
    expect(created[1] - created[0]).toBeGreaterThan(6000);
    expect(failedBy(load)).toEqual({});
    for (const h of web) expect((await served(h)).version).toBe("v1");
  });
});

describe("onFailure: revert, on three hosts with bootLimit 1", () => {
  const ids = (h: string) => sh(h, "docker ps --filter label=service=rel --filter label=role=web --format '{{.ID}} {{.Names}}'");

  it("a third host joins the rollout", async () => {
    await unset("canaryHosts");
    await unset("canaryWatch");
    await set("threeHosts", "true");
    await set("bootLimit", "1");
    await set("onFailure", "revert");
    await set("deadline", "8");
    const up = await p.up();
    expect(up.code, out(up)).toBe(0);
    web = ["app1", "app2", "app3"];
    for (const h of web) expect((await served(h)).version).toBe("v1");
  });

  it("a failure on host 3 brings hosts 1 and 2 back: the same containers, no pull, 0 failed requests", async () => {
    const before = await Promise.all(web.map(ids));
    await set("version", "v2");
    await set("failHost", "app3");
    const { result: up, load } = await underLoad(() => p.up());
    expect(up.code, out(up)).not.toBe(0);
    const text = out(up);
    // In turn: app2 starts once app1 passed, app3 once app2 did.
    expect(text.indexOf("app1: rel-web-prod-v2 passed")).toBeGreaterThan(0);
    expect(text.indexOf("app1: rel-web-prod-v2 passed")).toBeLessThan(text.indexOf("app2: starting rel-web-prod-v2"));
    expect(text.indexOf("app2: rel-web-prod-v2 passed")).toBeLessThan(text.indexOf("app3: starting rel-web-prod-v2"));
    expect(text).toContain("app3: waiting for rel-web-prod-v2 to answer its health check: container rel-web-prod-v2 did not become healthy within 8s");
    for (const h of ["app1", "app2"]) {
      expect(text).toContain(`${h}: reverting (onFailure: revert): app3 failed (waiting for rel-web-prod-v2 to answer its health check: container rel-web-prod-v2 did not become healthy within 8s`);
      expect(text).toMatch(new RegExp(`${h}: reverting \\(onFailure: revert\\): .*, so this host went back: rel-web-prod-v2 was stopped and kept as rel-web-prod-v2_failed_[0-9a-f]+, rel-web-prod-v1 keeps serving \\(traffic went back to it\\)`));
    }
    // The workers' turn never came: nothing of theirs changed.
    expect(text).not.toContain("starting rel-workers-prod-v2");
    expect(text).toContain("app1: waiting for its turn in the rollout: app3 failed");
    expect(await Promise.all(web.map(ids))).toEqual(before);
    for (const h of web) expect((await served(h)).version).toBe("v1");
    expect(failedBy(load)).toEqual({});
    expect(total(load)).toBeGreaterThan(1000);
    const outputs = JSON.parse((await p.run(["stack", "output", "--json", "--stack", p.stack])).stdout);
    expect(outputs.versions).toEqual({ app1: "v1", app2: "v1", app3: "v1" });
  });

  it("a rollout that passes everywhere moves every host, in turn, with 0 failed requests", async () => {
    await unset("failHost");
    const { result: up, load } = await underLoad(() => p.up());
    expect(up.code, out(up)).toBe(0);
    for (const h of web) expect((await served(h)).version).toBe("v2");
    expect(failedBy(load)).toEqual({});
    const outputs = JSON.parse((await p.run(["stack", "output", "--json", "--stack", p.stack])).stdout);
    expect(outputs.versions).toEqual({ app1: "v2", app2: "v2", app3: "v2" });
  });
});

describe("asset bridging (asset_path)", () => {
  const asset = async (h: string, v: string) => (await httpGet(`http://${host(h).address}/assets/app-${v}.css`)).status;

  it("during a swap, a client holding the old version's page loads its assets from either container with 0 failures", async () => {
    await set("assetPath", "/public/assets");
    await set("version", "v1");
    const first = await p.up();
    expect(first.code, out(first)).toBe(0);
    for (const h of web) {
      expect((await served(h)).version).toBe("v1");
      expect(await asset(h, "v1")).toBe(200);
      // Not in this image, and the previous version's were never extracted.
      expect(await asset(h, "v2")).toBe(404);
    }
    // The old page's asset, requested all through the swap to v2.
    await set("version", "v2");
    const { result: up, load } = await underLoad(() => p.up(), "/assets/app-v1.css");
    expect(up.code, out(up)).toBe(0);
    expect(out(up)).toContain("bridging the assets of v1 and v2");
    expect(failedBy(load)).toEqual({});
    expect(total(load)).toBeGreaterThan(1000);
    for (const h of web) {
      expect((await served(h)).version).toBe("v2");
      expect([await asset(h, "v1"), await asset(h, "v2")]).toEqual([200, 200]);
      // Kamal's layout; only the serving version's directories are left.
      expect(await sh(h, "ls /root/.kamal/apps/rel-prod/assets/extracted /root/.kamal/apps/rel-prod/assets/volumes")).toBe(
        "/root/.kamal/apps/rel-prod/assets/extracted:\nweb-v2\n\n/root/.kamal/apps/rel-prod/assets/volumes:\nweb-v2",
      );
    }
  });
});

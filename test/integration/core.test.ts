/**
 * The core promise, end to end with the real Pulumi engine against the sandbox hosts:
 * deploy, zero-downtime swap under load, a failed deploy that changes nothing, rollback
 * without a registry, secret env, accessory data, drift, provider-code changes, destroy.
 */
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shellJoin } from "../../provider/commands/shell";
import { SshPool } from "../../provider/ssh/pool";
import { eventually, httpGet } from "../../testbed/http";
import { startLoad, type LoadResult } from "../../testbed/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, registryFault, repoRoot, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
const SECRETS = { first: "tok-first-7f3a9c", second: "tok-second-b81d2e", db: "db-pass-5c0e11" };
let project: PulumiProject;

const web = ["app1", "app2"];
const url = (h: string) => `http://${host(h).address}/version`;

async function versionOn(h: string): Promise<{ version: string; container: string; env?: Record<string, string> }> {
  const r = await httpGet(url(h));
  expect(r.status).toBe(200);
  return JSON.parse(r.body);
}

async function config(key: string, value: string, secret = false) {
  const r = await project.run(["config", "set", ...(secret ? ["--secret"] : []), "--stack", project.stack, key, value]);
  expect(r.code, r.stderr).toBe(0);
}

/** Runs `pulumi up` under constant load through both Traefiks (keep-alive and fresh
 * connections, and slow requests in flight) and returns the result and the load counts. */
async function upUnderLoad(): Promise<{ up: PulumiRun; load: LoadResult[] }> {
  const loads = web.flatMap((h) => [
    startLoad({ url: url(h), rate: 150, connections: 4 }),
    startLoad({ url: url(h), rate: 50, connections: 2, newConnections: true }),
    // Requests that take 1.5 s: some are in flight at every switch and must still complete.
    startLoad({ url: `http://${host(h).address}/slow?ms=1500`, rate: 10, connections: 20 }),
  ]);
  await new Promise((r) => setTimeout(r, 1000));
  const up = await project.up();
  await new Promise((r) => setTimeout(r, 1000));
  const load = await Promise.all(loads.map((l) => l.stop()));
  return { up, load };
}

function failed(load: LoadResult[]): number {
  const n = load.reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0);
  if (n > 0) console.error("failed requests:", JSON.stringify(load.map((l) => ({ ...l, samples: l.samples.slice(0, 5) }))));
  return n;
}
function total(load: LoadResult[]): number {
  return load.reduce((n, l) => n + l.total, 0);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

beforeAll(async () => {
  // Start from clean hosts: no containers or files left by an earlier, interrupted run.
  for (const h of ["app1", "app2", "db1"]) {
    const conn = await pool.connect(target(h));
    await conn.exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal /root/kpapp-db"));
  }
  const dir = scratchProject("core", {
    "Pulumi.yaml": "name: kp-core\nruntime: nodejs\n",
    "package.json": JSON.stringify({ name: "kp-core", main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/core"))};\n`,
  });
  project = new PulumiProject(dir);
  await project.ensureStack();
  await config("version", "v1");
  await config("secretToken", SECRETS.first, true);
  await config("dbPassword", SECRETS.db, true);
  await config("deadline", "10");
});

afterAll(async () => {
  registryFault("start");
  pool.closeAll();
});

describe("Service, Traefik, EnvFile and Accessory on the sandbox", () => {
  it("deploys v1: each Traefik serves v1, the worker runs, the app reaches the accessory", async () => {
    const up = await project.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    for (const h of web) expect((await versionOn(h)).version).toBe("v1");

    const app1 = await pool.connect(target("app1"));
    const running = (await app1.exec(onHost("docker ps --format '{{.Names}} {{.Status}}'"))).stdout;
    expect(running).toMatch(/^kpapp-workers-v1 Up/m);
    expect(running).toMatch(/^kpapp-web-v1 Up .*\(healthy\)/m);
    expect(running).toMatch(/^traefik Up/m);

    const put = await fetch(`http://${host("db1").address}:9000/kv/greeting`, { method: "PUT", body: "hello-accessory" });
    expect(put.status).toBe(204);
    const via = await httpGet(`http://${host("app2").address}/upstream?path=/kv/greeting`);
    expect(via).toEqual({ status: 200, body: "hello-accessory" });
  });

  it("swaps to v2 under constant load with 0 failed requests", async () => {
    await config("version", "v2");
    const { up, load } = await upUnderLoad();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(total(load)).toBeGreaterThan(1500);
    expect(failed(load)).toBe(0);
    for (const h of web) expect((await versionOn(h)).version).toBe("v2");
    // Traffic moves by the scope's route file, confirmed by Traefik's API: no cord to cut.
    expect(up.stdout).toMatch(/\[kamal\] app1: Traefik routes to kpapp-web-v2 only/);
    expect(up.stdout).not.toMatch(/cutting the cord/);
    expect(up.stdout).toMatch(/kpapp-web-app1 updated .*\[diff: ~version\]/);
  });

  it("fails a deploy of the broken image with a clear error; v2 keeps serving and stays in state", async () => {
    await config("version", "broken");
    const { up, load } = await upUnderLoad();
    expect(up.code).not.toBe(0);
    const out = up.stdout + up.stderr;
    expect(out).toMatch(
      /app1: waiting for kpapp-web-broken to answer its health check: container kpapp-web-broken did not become healthy within 10s \(health unhealthy; last probe: \/app probe http:\/\/127\.0\.0\.1\/up exited 1: "probe: status 503"\); it was stopped and kept as kpapp-web-broken_failed_[0-9a-f]{8} for its logs, kpapp-web-v2 keeps serving\./,
    );
    expect(out).toContain("--- health check log (last 5) ---\n    exit 1: probe: status 503");
    expect(out).toMatch(/--- last log lines of kpapp-web-broken ---\n.*testapp broken: listening on :80 as kpapp-web-broken/);
    expect(failed(load)).toBe(0);
    for (const h of web) expect((await versionOn(h)).version).toBe("v2");
    const versions = await project.run(["stack", "output", "webVersions", "--json", "--stack", project.stack]);
    expect(JSON.parse(versions.stdout)).toEqual({ app1: "v2", app2: "v2" });
  });

  it("goes back to v1 with the registry stopped: no pull, 0 failed requests", async () => {
    await config("version", "v1");
    registryFault("stop");
    try {
      const { up, load } = await upUnderLoad();
      expect(up.code, up.stdout + up.stderr).toBe(0);
      expect(failed(load)).toBe(0);
      expect(up.stdout).not.toMatch(/pulling .*testapp:v1/);
      expect(up.stdout).toMatch(/\[kamal\] app1: \S+\/kp\/testapp:v1 is already on the host \(no pull\)/);
      const pulled = await project.run(["stack", "output", "pulled", "--stack", project.stack]);
      expect(pulled.stdout.trim()).toBe("false");
    } finally {
      registryFault("start");
    }
    for (const h of web) expect((await versionOn(h)).version).toBe("v1");
  });

  it("redeploys a changed secret to a fresh container; the value is nowhere in plaintext", async () => {
    const before = await versionOn("app1");
    expect(before.env).toEqual({ SECRET_TOKEN: SECRETS.first });
    await config("secretToken", SECRETS.second, true);
    const { up, load } = await upUnderLoad();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(failed(load)).toBe(0);
    for (const h of web) {
      const now = await versionOn(h);
      expect(now.env).toEqual({ SECRET_TOKEN: SECRETS.second });
      expect(now.version).toBe("v1");
    }
    // Same version, fresh container: the old one stepped aside under another name, was
    // drained, and is pruned (a replaced copy never takes a retained version's place).
    expect(up.stdout).toMatch(/app1: starting kpapp-web-v1 \(\S+\) beside kpapp-web-v1_replaced_[0-9a-f]{8}/);
    expect(up.stdout).toMatch(/app1: pruning .*kpapp-web-v1_replaced_[0-9a-f]{8}/);
    const app1 = await pool.connect(target("app1"));
    expect((await app1.exec(onHost("docker ps -a --format '{{.Names}}'"))).stdout).not.toMatch(/_replaced_/);

    const secrets = Object.values(SECRETS);
    for (const file of filesUnder(path.join(project.dir, ".pulumi-state"))) {
      const text = readFileSync(file, "utf8");
      for (const s of secrets) expect(text.includes(s), `${s} in ${file}`).toBe(false);
    }
    for (const s of secrets) expect((up.stdout + up.stderr).includes(s)).toBe(false);
    for (const h of ["app1", "app2", "db1"]) {
      const conn = await pool.connect(target(h));
      const ps = (await conn.exec(onHost("ps auxww"))).stdout;
      const history = (await conn.run(onHost("cat /root/.bash_history /root/.sh_history /home/*/.bash_history 2>/dev/null"))).stdout;
      const envFiles = (await conn.exec(onHost("stat -c '%a %n' /root/.kamal/env/*/* 2>/dev/null || true"))).stdout;
      for (const s of secrets) {
        expect(ps.includes(s), `${s} in ps on ${h}`).toBe(false);
        expect(history.includes(s), `${s} in history on ${h}`).toBe(false);
      }
      for (const line of envFiles.trim().split("\n").filter(Boolean)) expect(line).toMatch(/^600 /);
    }
  });

  it("redacts secret values from error messages, even when the app logs them", async () => {
    await config("version", "broken");
    await config("leakEnv", "SECRET_TOKEN");
    const up = await project.up();
    await config("version", "v1");
    await project.run(["config", "rm", "leakEnv", "--stack", project.stack]);
    expect(up.code).not.toBe(0);
    const out = up.stdout + up.stderr;
    expect(out).toContain("SECRET_TOKEN=[REDACTED]");
    for (const s of Object.values(SECRETS)) expect(out.includes(s)).toBe(false);
  });

  it("keeps an accessory's data across a reboot", async () => {
    const before = await project.run(["stack", "output", "dbContainerId", "--stack", project.stack]);
    await config("dbConfig", "mode=changed\n");
    const up = await project.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain("[kamal] db1: rebooting kpapp-db");
    const after = await project.run(["stack", "output", "dbContainerId", "--stack", project.stack]);
    expect(after.stdout.trim()).not.toBe(before.stdout.trim());
    const got = await httpGet(`http://${host("db1").address}:9000/kv/greeting`);
    expect(got).toEqual({ status: 200, body: "hello-accessory" });
  });

  it("replaces Traefik when its configuration changes, refusing no connection under load", async () => {
    const app1 = await pool.connect(target("app1"));
    const before = (await app1.exec(onHost("docker inspect traefik --format '{{.Id}}'"))).stdout.trim();
    await config("traefikLogLevel", "WARN");
    const loads = web.flatMap((h) => [
      startLoad({ url: url(h), rate: 60, connections: 3 }),
      startLoad({ url: url(h), rate: 30, newConnections: true }),
    ]);
    const up = await project.up();
    const load = await Promise.all(loads.map((l) => l.stop()));
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toMatch(/\[kamal\] app1: Traefik replaced; no connection was refused/);
    expect(failed(load)).toBe(0);
    const after = JSON.parse((await app1.exec(onHost("docker inspect traefik --format '{{json .}}'"))).stdout);
    expect(after.Id).not.toBe(before);
    expect(after.Args).toContain("--log.level=WARN");
    // The bridge and its redirect are gone.
    expect((await app1.exec(onHost("docker ps -a --format '{{.Names}}'"))).stdout).not.toMatch(/traefik_(handover|old|next)_/);
    expect((await app1.exec(onHost("iptables -t nat -S | grep -c kamal-handover || true"))).stdout.trim()).toBe("0");
    for (const h of web) expect((await versionOn(h)).version).toBe("v1");
  });

  it("refresh shows a container removed by hand as drift; the next up repairs it", async () => {
    const app2 = await pool.connect(target("app2"));
    await app2.exec(onHost("docker rm -f kpapp-web-v1"));
    await eventually("app2 stops serving", async () => ((await httpGet(url("app2")).catch(() => ({ status: 0 }))).status !== 200 ? true : undefined));
    const refresh = await project.refresh();
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect(refresh.stdout).toMatch(/~ +pulumi-nodejs:dynamic\/kamal:AppContainer kpapp-web-app2 updated/);
    // Refresh records what it read; stack outputs are only recomputed by `up`.
    const exported = JSON.parse((await project.run(["stack", "export", "--stack", project.stack])).stdout);
    const outputs = (name: string) =>
      exported.deployment.resources.find((r: { urn: string }) => r.urn.endsWith(`::${name}`)).outputs;
    expect(outputs("kpapp-web-app2")).toMatchObject({ status: "missing", containerId: "" });
    expect(outputs("kpapp-web-app1")).toMatchObject({ status: "running", runningVersion: "v1" });
    const up = await project.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toMatch(/kpapp-web-app2 updated/);
    expect((await versionOn("app2")).version).toBe("v1");
  });

  it("previews no changes after the provider's code changed", async () => {
    const impl = path.join(repoRoot, "dist/provider/handlers/app.js");
    const original = readFileSync(impl, "utf8");
    appendFileSync(impl, "\n// a change to the provider's code\nexports.__touched = Date.now();\n");
    try {
      const preview = await project.preview(["--expect-no-changes"]);
      expect(preview.code, preview.stdout + preview.stderr).toBe(0);
      expect(preview.stdout).not.toMatch(/~ |\+ |- /);
    } finally {
      writeFileSync(impl, original);
    }
  });

  it("refuses a host whose key does not match, through the Pulumi engine", async () => {
    const known = readFileSync(host("app1").knownHostsPath, "utf8");
    const app1Key = known.split("\n").find((l) => l.startsWith(`${host("app1").address} `))!.split(" ").slice(1).join(" ");
    const dir = scratchProject("hostkey", {
      "Pulumi.yaml": "name: kp-hostkey\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-hostkey", main: "index.ts" }),
      "index.ts": `
import * as kamal from ${JSON.stringify(repoRoot)};
import { ssh, sandbox } from ${JSON.stringify(path.join(repoRoot, "test/programs/sandbox"))};
new kamal.Traefik("impostor", {
  hosts: [{ name: "app2", address: ${JSON.stringify(host("app2").address)}, hostKey: ${JSON.stringify(app1Key)} }],
  ssh: ssh({ knownHostsPath: undefined }),
  image: sandbox.images.traefik,
});
`,
    });
    const p = new PulumiProject(dir);
    await p.ensureStack();
    const up = await p.up();
    expect(up.code).not.toBe(0);
    expect(up.stdout + up.stderr).toMatch(/app2: connecting: host key SHA256:\S+ does NOT match the key recorded in known_hosts \(possible man-in-the-middle\); connection refused/);
  });

  it("destroys everything but the accessory's data", async () => {
    const destroy = await project.destroy();
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    for (const h of web) {
      const conn = await pool.connect(target(h));
      expect((await conn.exec(onHost("docker ps -a --format '{{.Names}}'"))).stdout.trim()).toBe("");
    }
    const db1 = await pool.connect(target("db1"));
    expect((await db1.exec(onHost("docker ps -a --format '{{.Names}}'"))).stdout.trim()).toBe("");
    expect((await db1.exec(onHost(shellJoin(["cat", "/root/kpapp-db/data/greeting"])))).stdout).toBe("hello-accessory");
    await db1.exec(onHost("rm -rf /root/kpapp-db"));
  });
});

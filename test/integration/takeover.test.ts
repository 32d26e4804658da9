/**
 * Taking over hosts that Kamal deployed: the first `pulumi up` of a KamalApp on the same
 * deploy.yml adopts what runs there (Kamal 1's Traefik, or kamal-proxy's routes) under
 * load with no failed request, its preview says what it takes over, and the next `up`
 * changes nothing. The starting states are built as Kamal leaves a host (helpers/kamalHosts).
 */
import { writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { eventually, httpGet } from "../../testbed/http";
import { leaveAsKamal1, leaveAsKamal2 } from "../helpers/kamalHosts";
import { startLoad, type LoadResult } from "../../testbed/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
const web = ["app1", "app2"];
const out = (r: PulumiRun) => r.stdout + r.stderr;

async function cleanHosts() {
  for (const h of web) {
    const conn = await pool.connect(target(h));
    await conn.exec(
      onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; docker network ls -q --filter name=kamal | xargs -r docker network rm >/dev/null 2>&1; docker volume rm kamal-proxy-config >/dev/null 2>&1; rm -rf /root/.kamal /home/deploy/.kamal; true"),
    );
  }
}

/** Kamal 1's Let's Encrypt recipe: its own entrypoints on :80 and :443, 443 published too
 * (the certificate resolver itself is left out: the sandbox reaches no ACME server, so
 * websecure answers plain HTTP, which shows traffic on 443 moving as well). */
const KAMAL1_TRAEFIK_ARGS = { "entryPoints.web.address": ":80", "entryPoints.websecure.address": ":443", accesslog: "true" };
const KAMAL1_PUBLISH = ["443:443"];
/** Kamal 1's `healthcheck.cord` moved from /tmp/kamal-cord: Kamal's container is still taken
 * out of rotation by its cord before it stops. */
const KAMAL1_CORD = "/cord";

function deployYml(kamal: 1 | 2): string {
  const sb = sandbox();
  const common = [
    `image: kp/testapp`,
    `servers:`,
    ...web.map((h) => `  - ${host(h).address}`),
    `registry:`,
    `  server: ${sb.registry.address}`,
    `  username: ${sb.registry.username}`,
    `  password:`,
    `    - KAMAL_REGISTRY_PASSWORD`,
  ];
  return kamal === 1
    ? [`service: takeover1`, ...common, `healthcheck:`, `  cmd: /app probe http://127.0.0.1/up`, `  port: 80`, `  interval: 1s`, `  cord: ${KAMAL1_CORD}`, `traefik:`, `  image: ${sb.images.traefik}`, `  options:`, `    publish:`, ...KAMAL1_PUBLISH.map((p) => `      - "${p}"`), `  args:`, ...Object.entries(KAMAL1_TRAEFIK_ARGS).map(([k, v]) => `    ${k}: "${v}"`), ""].join("\n")
    : [`service: takeover2`, ...common, `proxy:`, `  host: takeover2.example.test`, `  app_port: 80`, `  healthcheck:`, `    path: /up`, `    interval: 1`, ""].join("\n");
}

function project(kamal: 1 | 2): PulumiProject {
  const dir = scratchProject(`takeover${kamal}`, {
    "Pulumi.yaml": `name: kp-takeover${kamal}\nruntime: nodejs\n`,
    "package.json": JSON.stringify({ name: `kp-takeover${kamal}`, main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/takeover"))};\n`,
    "config/deploy.yml": deployYml(kamal),
  });
  mkdirSync(path.join(dir, ".kamal"), { recursive: true });
  writeFileSync(path.join(dir, ".kamal/secrets"), "");
  return new PulumiProject(dir, "test");
}

async function servedVersion(h: string, hostHeader?: string): Promise<string> {
  const r = await httpGet(`http://${host(h).address}/version`, { host: hostHeader });
  expect(r.status, `${h}: ${r.body}`).toBe(200);
  return (JSON.parse(r.body) as { version: string }).version;
}

/**
 * Load on both hosts. Kamal's proxies (Traefik as Kamal 1 runs it, kamal-proxy) keep
 * keep-alive connections open until they stop, then close the idle ones: a request a client
 * sends at that very moment meets a closed connection, which browsers, curl and Go's or
 * Python's clients send again on a new one (RFC 9112 §9.3.1). The keep-alive load does the
 * same (counted as `retried`, reported); every other failure counts. New-connection load has
 * no such case and must see none at all.
 */
async function underLoad<T>(hostHeader: string | undefined, ports: number[], fn: () => Promise<T>): Promise<{ result: T; load: LoadResult[] }> {
  const headers = hostHeader ? { host: hostHeader } : undefined;
  const loads = web.flatMap((h) =>
    ports.flatMap((port) => [
      startLoad({ url: `http://${host(h).address}:${port}/`, rate: 80 / ports.length, connections: 3, headers, retryOnStaleConnection: true }),
      startLoad({ url: `http://${host(h).address}:${port}/`, rate: 30 / ports.length, newConnections: true, headers }),
    ]),
  );
  await new Promise((r) => setTimeout(r, 500));
  const result = await fn();
  await new Promise((r) => setTimeout(r, 500));
  return { result, load: await Promise.all(loads.map((l) => l.stop())) };
}

function failed(load: LoadResult[]): number {
  const n = load.reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0);
  if (n > 0) console.error("failed requests:", JSON.stringify(load.map((l) => ({ ...l, samples: l.samples.slice(0, 5) }))));
  return n;
}

const projects: PulumiProject[] = [];
beforeAll(cleanHosts);
afterAll(async () => {
  for (const p of projects) await p.destroy();
  await cleanHosts();
  pool.closeAll();
});

describe.each([
  { kamal: 1 as const, hostHeader: undefined, incumbent: "Kamal's Traefik" },
  { kamal: 2 as const, hostHeader: "takeover2.example.test", incumbent: "Kamal 2's kamal-proxy" },
])("takeover of hosts deployed by Kamal $kamal", ({ kamal, hostHeader, incumbent }) => {
  const service = `takeover${kamal}`;
  let p: PulumiProject;

  it("adopts what runs there with no failed request, and says so in the preview", async () => {
    await cleanHosts();
    for (const h of web) {
      const conn = await pool.connect(target(h));
      const app = { service, role: "web", version: "v1", host: host(h).address, env: {}, secretEnv: {} };
      if (kamal === 1) await leaveAsKamal1(conn, app, sandbox().images.traefik, KAMAL1_TRAEFIK_ARGS, KAMAL1_PUBLISH, KAMAL1_CORD);
      else await leaveAsKamal2(conn, app, { host: hostHeader, healthcheckPath: "/up", healthcheckInterval: 1 });
    }
    // Kamal's Traefik routes a container once its Docker provider has seen it healthy.
    for (const h of web) await eventually(`v1 served on ${h}`, async () => ((await servedVersion(h, hostHeader)) === "v1" ? true : undefined));

    p = project(kamal);
    projects.push(p);
    await p.ensureStack();
    expect((await p.run(["config", "set", "--stack", p.stack, "version", "v2"])).code).toBe(0);
    const preview = await p.preview();
    expect(preview.code, out(preview)).toBe(0);
    for (const h of web) expect(out(preview)).toMatch(new RegExp(`${host(h).address}: takes over ${incumbent}`));

    const { result: up, load } = await underLoad(hostHeader, kamal === 1 ? [80, 443] : [80], () => p.up());
    expect(up.code, out(up)).toBe(0);
    // Kamal 1's container leaves rotation by its cord (wherever healthcheck.cord put it) first.
    if (kamal === 1) expect(out(up)).toContain("cutting the cord of takeover1-web-v1");
    expect(failed(load)).toBe(0);
    expect(load.reduce((n, l) => n + l.ok, 0)).toBeGreaterThan(1000);
    console.log(`takeover from Kamal ${kamal}: ${load.reduce((n, l) => n + l.total, 0)} requests, 0 failed, ${load.reduce((n, l) => n + l.retried, 0)} sent again after a stale keep-alive connection`);
    for (const h of web) {
      expect(await servedVersion(h, hostHeader)).toBe("v2");
      const conn = await pool.connect(target(h));
      const running = (await conn.exec(onHost("docker ps --format '{{.Names}}' | sort"))).stdout.trim().split("\n");
      expect(running).toEqual([`${service}-web-v2`, "traefik"]);
      // No redirect left behind.
      expect((await conn.exec(onHost("iptables -t nat -S | grep -c kamal-handover || true"))).stdout.trim()).toBe("0");
    }
  });

  it("then changes nothing on the next up", async () => {
    const again = await p.up(["--expect-no-changes"]);
    expect(again.code, out(again)).toBe(0);
    for (const h of web) expect(await servedVersion(h, hostHeader)).toBe("v2");
  });
});

describe("a kamal-proxy with a service in maintenance", () => {
  it("is refused at preview, naming the host and why; once live, the takeover previews", async () => {
    await cleanHosts();
    for (const h of web) {
      const conn = await pool.connect(target(h));
      await leaveAsKamal2(conn, { service: "takeover2", role: "web", version: "v1", host: host(h).address, env: {}, secretEnv: {} }, { host: "takeover2.example.test", healthcheckPath: "/up", healthcheckInterval: 1 });
    }
    const conn = await pool.connect(target(web[0]));
    await conn.exec(onHost("docker exec kamal-proxy kamal-proxy stop takeover2-web"));
    const p = project(2);
    projects.push(p);
    await p.ensureStack();
    expect((await p.run(["config", "set", "--stack", p.stack, "version", "v2"])).code).toBe(0);
    const refused = await p.preview();
    expect(refused.code).not.toBe(0);
    expect(out(refused)).toMatch(new RegExp(`${host(web[0]).address.replaceAll(".", "\\.")}: taking over kamal-proxy: kamal-proxy has takeover2-web \\S+ \\(maintenance mode\\): run \`kamal app live\` first`));
    await conn.exec(onHost("docker exec kamal-proxy kamal-proxy resume takeover2-web"));
    const previewed = await p.preview();
    expect(previewed.code, out(previewed)).toBe(0);
    for (const h of web) expect(out(previewed)).toContain(`${host(h).address}: takes over Kamal 2's kamal-proxy`);
  });
});

describe("a Traefik change where the SSH user cannot change iptables", () => {
  it("restarts Traefik with a short gap instead, and says so", async () => {
    await cleanHosts();
    const dir = scratchProject("edge", {
      "Pulumi.yaml": "name: kp-edge\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-edge", main: "index.ts" }),
      "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/edge"))};\n`,
    });
    const p = new PulumiProject(dir, "test");
    projects.push(p);
    await p.ensureStack();
    const set = async (k: string, v: string) => expect((await p.run(["config", "set", "--stack", p.stack, k, v])).code).toBe(0);
    await set("user", host("app1").deployUser);
    const first = await p.up();
    expect(first.code, out(first)).toBe(0);
    await set("logLevel", "WARN");
    // The preview says there will be a gap, before anything changes.
    const preview = await p.preview();
    expect(preview.code, out(preview)).toBe(0);
    expect(out(preview)).toContain(`app1: this change restarts Traefik WITH A GAP: ${host("app1").deployUser} cannot change iptables`);
    const changed = await p.up();
    expect(changed.code, out(changed)).toBe(0);
    expect(changed.stdout).toContain(`iptables cannot be changed as ${host("app1").deployUser} (not root, no passwordless sudo)`);
    expect(changed.stdout).toMatch(/\[kamal\] app1: Traefik replaced \(port closed for ~\d+ms\)/);
    const conn = await pool.connect(target("app1"));
    expect((await conn.exec(onHost("docker inspect traefik --format '{{json .Args}}'"))).stdout).toContain("--log.level=WARN");
    expect((await conn.exec(onHost("docker ps -a --format '{{.Names}}'"))).stdout.trim()).toBe("traefik");
  });
});


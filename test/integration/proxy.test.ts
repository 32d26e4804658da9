/**
 * Proxy capabilities against the sandbox, with the real Pulumi engine and a real ACME CA
 * (Pebble): HTTPS with a certificate Traefik obtains and keeps across restarts, and with a
 * certificate of the app's own; swaps over HTTPS under load; two apps, each in its own stack,
 * sharing one Traefik per host (owned by an infrastructure stack) with each one's deploy,
 * failed deploy, rollback and destroy leaving the other untouched; maintenance on and off;
 * every route setting shown by a request; Traefik's arguments and image changed under load.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { eventually, request, type RequestOptions } from "../../testbed/http";
import { startLoad, type Load, type LoadResult } from "../../testbed/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, pointName, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";
import { makeCertificate } from "../../testbed/tls";

const pool = new SshPool();
const SHOP = "shop.kp.test";
const BLOG = "blog.kp.test";
const app1 = () => host("app1").address;
const app2 = () => host("app2").address;
let dir: string;
let pebbleRoot: string;
let blogCa: string;
const stacks = {} as Record<"infra" | "shop" | "blog", PulumiProject>;
const out = (r: PulumiRun) => r.stdout + r.stderr;

async function set(p: PulumiProject, values: Record<string, string | undefined>) {
  for (const [key, value] of Object.entries(values)) {
    const r = value === undefined ? await p.run(["config", "rm", "--stack", p.stack, key]) : await p.run(["config", "set", "--plaintext", "--stack", p.stack, key, value]);
    if (value !== undefined) expect(r.code, r.stderr).toBe(0);
  }
}

async function up(p: PulumiProject, ok = true): Promise<PulumiRun> {
  const r = await p.up();
  expect(r.code === 0, `${p.stack}: ${out(r)}`).toBe(ok);
  return r;
}

const shopGet = (pathname = "/version", opts: RequestOptions = {}) => request(`https://${app1()}${pathname}`, { host: SHOP, ca: pebbleRoot, ...opts });
const blogGet = (address: string, pathname = "/version", opts: RequestOptions = {}) => request(`https://${address}${pathname}`, { host: BLOG, ca: blogCa, ...opts });

/** HTTPS load on shop (app1) and blog (both hosts), keep-alive and new connections. */
function loads(which: ("shop" | "blog")[] = ["shop", "blog"]): Record<"shop" | "blog", Load[]> {
  const https = (address: string, name: string, ca: string) => [
    startLoad({ url: `https://${address}/version`, rate: 40, connections: 3, headers: { host: name }, tls: { ca, servername: name }, retryOnStaleConnection: false }),
    startLoad({ url: `https://${address}/version`, rate: 15, newConnections: true, headers: { host: name }, tls: { ca, servername: name } }),
  ];
  return {
    shop: which.includes("shop") ? https(app1(), SHOP, pebbleRoot) : [],
    blog: which.includes("blog") ? [...https(app1(), BLOG, blogCa), ...https(app2(), BLOG, blogCa)] : [],
  };
}

async function underLoad<T>(fn: () => Promise<T>, which?: ("shop" | "blog")[]): Promise<{ result: T; load: Record<"shop" | "blog", LoadResult[]> }> {
  const running = loads(which);
  await new Promise((r) => setTimeout(r, 500));
  const result = await fn();
  await new Promise((r) => setTimeout(r, 500));
  return { result, load: { shop: await Promise.all(running.shop.map((l) => l.stop())), blog: await Promise.all(running.blog.map((l) => l.stop())) } };
}

function failed(load: LoadResult[]): number {
  const n = load.reduce((sum, l) => sum + l.errors + l.timeouts + l.non2xx, 0);
  if (n > 0) console.error("failed requests:", JSON.stringify(load.map((l) => ({ ...l, samples: l.samples.slice(0, 5) }))));
  return n;
}
const total = (load: LoadResult[]) => load.reduce((n, l) => n + l.total, 0);

async function sh(h: string, command: string): Promise<string> {
  return (await (await pool.connect(target(h))).exec(onHost(command))).stdout.trim();
}

async function containerIdsOf(service: string): Promise<string[]> {
  return [...(await sh("app1", `docker ps -q --no-trunc --filter label=service=${service}`)).split("\n"), ...(await sh("app2", `docker ps -q --no-trunc --filter label=service=${service}`)).split("\n")].filter(Boolean).sort();
}

beforeAll(async () => {
  for (const h of ["app1", "app2"]) await sh(h, "docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal /root/ptest");
  // Pebble's DNS answers the test names with the sandbox hosts (Let's Encrypt would ask real DNS).
  await pointName(SHOP, app1());
  await pointName(BLOG, app2());
  const pebbleTls = readFileSync(sandbox().acme.caCertificatesPath, "utf8");
  pebbleRoot = (await request(sandbox().acme.roots, { ca: pebbleTls })).body;
  expect(pebbleRoot).toContain("BEGIN CERTIFICATE");
  dir = scratchProject("proxy", {
    "Pulumi.yaml": "name: kp-proxy\nruntime: nodejs\n",
    "package.json": JSON.stringify({ name: "kp-proxy", main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/proxy"))};\n`,
  });
  // The program reads <stack>.cert.pem and <stack>.key.pem.
  blogCa = makeCertificate(dir, BLOG, "blog").ca;
  for (const s of ["infra", "shop", "blog"] as const) {
    stacks[s] = new PulumiProject(dir, s);
    await stacks[s].ensureStack();
  }
  await set(stacks.infra, { infra: "true" });
  await set(stacks.shop, { service: "shop", routeHost: SHOP, hosts: "app1", ssl: "acme", version: "v1" });
  await set(stacks.blog, { service: "blog", routeHost: BLOG, hosts: "app1,app2", ssl: "own", version: "v1" });
});

afterAll(async () => {
  for (const s of ["blog", "shop", "infra"] as const) if (stacks[s]) await stacks[s].destroy();
  pool.closeAll();
});

describe("HTTPS, many apps per host, maintenance and route settings on one Traefik", () => {
  let shopSerial: string | undefined;

  it("gets a certificate from the ACME CA for an app on one host: HTTPS answers with it, HTTP redirects", async () => {
    await up(stacks.infra);
    const t0 = Date.now();
    await up(stacks.shop);
    // Traefik asks Pebble once the route names the host (HTTP-01 on port 80).
    const answer = await eventually("a certificate from Pebble for shop", async () => {
      const r = await shopGet().catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 60_000, 500);
    console.log(`[proxy] shop served over HTTPS ${((Date.now() - t0) / 1000).toFixed(1)}s after its up began`);
    expect(JSON.parse(answer.body).version).toBe("v1");
    expect(answer.certificateSubject ?? SHOP).not.toBe("TRAEFIK DEFAULT CERT");
    shopSerial = answer.certificateSerial;
    expect(shopSerial).toBeTruthy();
    const plain = await request(`http://${app1()}/version`, { host: SHOP });
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe(`https://${SHOP}/version`);
    // The store is on the host, 0600, and holds the certificate.
    expect(await sh("app1", "stat -c %a /root/.kamal/proxy/acme/acme.json")).toBe("600");
    expect(await sh("app1", "grep -c shop.kp.test /root/.kamal/proxy/acme/acme.json")).not.toBe("0");
  });

  it("serves an app on two hosts with its own certificate (the key never in state or output)", async () => {
    const key = readFileSync(path.join(dir, "blog.key.pem"), "utf8");
    // A certificate that is not PEM is refused at preview, by path, and the key beside it is
    // not printed (the engine prints a named property's whole value: none is named).
    const certFile = path.join(dir, "blog.cert.pem");
    const cert = readFileSync(certFile, "utf8");
    writeFileSync(certFile, "not a certificate");
    const refused = await stacks.blog.preview();
    writeFileSync(certFile, cert);
    expect(refused.code).not.toBe(0);
    expect(out(refused)).toContain("roles.web.proxy.ssl.certificatePem: must be PEM text (-----BEGIN CERTIFICATE-----)");
    expect(out(refused)).not.toContain(key.split("\n")[1]);
    const r = await up(stacks.blog);
    expect(out(r)).not.toContain(key.split("\n")[1]);
    const exported = await stacks.blog.run(["stack", "export", "--stack", "blog"]);
    expect(exported.stdout).not.toContain(key.split("\n")[1]);
    for (const a of [app1(), app2()]) {
      const answer = await eventually(`blog over HTTPS on ${a}`, async () => {
        const x = await blogGet(a).catch(() => undefined);
        return x?.status === 200 ? x : undefined;
      });
      expect(answer.certificateSubject).toBe(BLOG);
    }
    expect(await sh("app2", "stat -c %a /root/.kamal/proxy/traefik/blog-web@tls.yml")).toBe("600");
    // Shop still answers beside it, by its own name.
    expect((await shopGet()).status).toBe(200);
  });

  it("swaps both apps over HTTPS under load with 0 failed requests", async () => {
    await set(stacks.shop, { version: "v2" });
    await set(stacks.blog, { version: "v2" });
    const { load } = await underLoad(async () => {
      await up(stacks.shop);
      await up(stacks.blog);
    });
    expect(total(load.shop)).toBeGreaterThan(300);
    expect(failed(load.shop)).toBe(0);
    expect(failed(load.blog)).toBe(0);
    expect(JSON.parse((await shopGet()).body).version).toBe("v2");
    for (const a of [app1(), app2()]) expect(JSON.parse((await blogGet(a)).body).version).toBe("v2");
  });

  it("a failed deploy and a rollback of one app leave the other untouched, 0 failed requests on both", async () => {
    const blogBefore = await containerIdsOf("blog");
    for (const [version, ok] of [["broken", false], ["v1", true]] as const) {
      await set(stacks.shop, { version });
      const { load } = await underLoad(() => up(stacks.shop, ok));
      expect(failed(load.blog), `blog during shop ${version}`).toBe(0);
      expect(failed(load.shop), `shop during its own ${version}`).toBe(0);
    }
    expect(await containerIdsOf("blog")).toEqual(blogBefore);
    expect(JSON.parse((await shopGet()).body).version).toBe("v1");
  });

  it("maintenance: 503 with the page while the containers run, the other app unaffected; back live at once", async () => {
    const before = await containerIdsOf("blog");
    await set(stacks.blog, { maintenance: JSON.stringify({ message: "Back at noon" }) });
    const preview = await stacks.blog.preview();
    expect(preview.code, out(preview)).toBe(0);
    expect(out(preview)).toMatch(/[+~] maintenance +: \{\n +[+~] message: "Back at noon"/);
    const { result: on, load } = await underLoad(() => up(stacks.blog), ["shop"]);
    expect(failed(load.shop)).toBe(0);
    expect(out(on)).toContain("keeps running");
    for (const a of [app1(), app2()]) {
      const r = await blogGet(a);
      expect(r.status).toBe(503);
      expect(r.body).toContain("Back at noon");
      expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    }
    expect(await containerIdsOf("blog")).toEqual(before);
    expect((await shopGet()).status).toBe(200);

    await set(stacks.blog, { maintenance: JSON.stringify({ page: "<p>{{ .Message }}</p>", message: "upgrading" }) });
    await up(stacks.blog);
    expect((await blogGet(app2())).body).toBe("<p>upgrading</p>");

    await set(stacks.blog, { maintenance: undefined });
    const t0 = Date.now();
    await up(stacks.blog);
    console.log(`[proxy] blog live again: up took ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    for (const a of [app1(), app2()]) expect((await blogGet(a)).status).toBe(200);
    expect(await containerIdsOf("blog")).toEqual(before);
  });

  it("route settings take effect by a rewritten route, each shown by a request; the containers never change", async () => {
    const before = await containerIdsOf("blog");
    // A path prefix, stripped (Kamal 2's default) and not.
    await set(stacks.blog, { proxy: JSON.stringify({ pathPrefix: "/api" }) });
    await up(stacks.blog);
    expect(JSON.parse((await blogGet(app1(), "/api/headers")).body).path).toBe("/headers");
    expect((await blogGet(app1(), "/headers")).status).toBe(404);
    await set(stacks.blog, { proxy: JSON.stringify({ pathPrefix: "/api", stripPathPrefix: false }) });
    await up(stacks.blog);
    expect(JSON.parse((await blogGet(app1(), "/api/headers")).body).path).toBe("/api/headers");

    // A response timeout: a slow answer becomes 504 at the limit, with the app's error page
    // (error_pages_path's 504.html); a quick one passes; the app's own 404 is its own.
    await set(stacks.blog, { proxy: JSON.stringify({ responseTimeout: "1s" }), errorPages: JSON.stringify({ "504": "<h1>took too long</h1>", "404": "<h1>not ours</h1>" }) });
    await up(stacks.blog);
    const t0 = Date.now();
    const late = await blogGet(app1(), "/slow?ms=4000");
    expect([late.status, late.body, late.headers["content-type"]]).toEqual([504, "<h1>took too long</h1>", "text/html; charset=utf-8"]);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await blogGet(app1(), "/slow?ms=100")).status).toBe(200);
    const missing = await blogGet(app1(), "/assets/no-such-file");
    expect([missing.status, missing.body.trim()]).toEqual([404, "404 page not found"]);
    await set(stacks.blog, { errorPages: undefined });

    // Buffering with a body limit: over it, 413 before the app sees anything.
    await set(stacks.blog, { proxy: JSON.stringify({ buffering: { maxRequestBody: "1KB" } }) });
    await up(stacks.blog);
    expect((await blogGet(app1(), "/upload", { method: "POST", body: Buffer.alloc(2000) })).status).toBe(413);
    const small = await blogGet(app1(), "/upload", { method: "POST", body: Buffer.alloc(500) });
    expect([small.status, small.body.trim()]).toEqual([200, "500"]);
    expect(await containerIdsOf("blog")).toEqual(before);

    // A health check slower than its timeout fails the deploy; the old version keeps serving.
    await set(stacks.blog, { proxy: undefined, env: JSON.stringify({ TESTAPP_UP_DELAY_MS: "1500" }), healthcheck: JSON.stringify({ timeout: 1, deadline: 5 }) });
    const slow = await up(stacks.blog, false);
    // Told what the probe saw, and without Docker's health log, which this container has not.
    expect(out(slow)).toMatch(/did not become healthy within 5s \(last probe: GET http:\/\/[\d.]+:80\/up timed out after \d+ms\); it was stopped/);
    expect(out(slow)).not.toContain("health check log");
    expect((await blogGet(app1())).status).toBe(200);
    await set(stacks.blog, { healthcheck: JSON.stringify({ timeout: 3, deadline: 8 }) });
    await up(stacks.blog);
  });

  it("changes Traefik's arguments under HTTPS load with 0 failed requests and reuses the stored certificate", async () => {
    await set(stacks.infra, { trustForwarded: "true" });
    const { result, load } = await underLoad(() => up(stacks.infra));
    expect(out(result)).toContain("no connection was refused");
    expect(failed(load.shop)).toBe(0);
    expect(failed(load.blog)).toBe(0);
    const after = await shopGet();
    expect(after.status).toBe(200);
    expect(after.certificateSerial).toBe(shopSerial);
  });

  it("forwards a client's X-Forwarded-* headers only to the app that asks, on a Traefik that trusts them", async () => {
    // What a load balancer in front would send.
    const sent = { "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "lb.example.com" };
    await set(stacks.blog, { proxy: JSON.stringify({ forwardHeaders: true }) });
    await up(stacks.blog);
    const trusted = JSON.parse((await blogGet(app2(), "/headers", { headers: sent })).body).headers;
    expect(trusted["X-Forwarded-For"][0]).toMatch(/^203\.0\.113\.7, \d+\.\d+\.\d+\.\d+$/);
    expect(trusted["X-Forwarded-Host"]).toEqual(["lb.example.com"]);
    await set(stacks.blog, { proxy: JSON.stringify({ forwardHeaders: false }) });
    await up(stacks.blog);
    const own = JSON.parse((await blogGet(app2(), "/headers", { headers: sent })).body).headers;
    expect(own["X-Forwarded-For"]).toHaveLength(1);
    expect(own["X-Forwarded-For"][0]).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(own["X-Forwarded-Host"]).toEqual([BLOG]);
    expect(own["X-Forwarded-Proto"]).toEqual(["https"]);
  });

  it("changes Traefik's image under load with 0 failed requests", async () => {
    await set(stacks.infra, { traefikImage: sandbox().images.traefikAlt });
    const { result, load } = await underLoad(() => up(stacks.infra));
    expect(out(result)).toContain("no connection was refused");
    expect(failed(load.shop)).toBe(0);
    expect(failed(load.blog)).toBe(0);
    expect(await sh("app1", "docker inspect traefik --format '{{.Config.Image}}'")).toBe(sandbox().images.traefikAlt);
    expect((await shopGet()).certificateSerial).toBe(shopSerial);
  });

  it("destroying one app under load leaves the other serving with 0 failed requests", async () => {
    const { load } = await underLoad(async () => {
      const r = await stacks.shop.destroy();
      expect(r.code, out(r)).toBe(0);
    }, ["blog"]);
    expect(total(load.blog)).toBeGreaterThan(300);
    expect(failed(load.blog)).toBe(0);
    expect(await containerIdsOf("shop")).toEqual([]);
    expect((await request(`http://${app1()}/version`, { host: SHOP })).status).toBe(404);
  });
});

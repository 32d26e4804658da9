/**
 * Taking over a kamal-proxy that serves HTTPS: the first `pulumi up` of a KamalApp on the
 * deploy.yml Kamal 2 deployed moves kamal-proxy's certificates into Traefik before Traefik
 * takes the ports, so that HTTPS clients meet the same certificate before, during and after
 * the takeover, and no request fails. Two roles, as Kamal 2 users serve them: `web` on two
 * hosts with the user's own certificate (`ssl.certificate_pem`, which moves beside the route
 * until the app's route brings its own), `admin` on one host with `ssl: true` (a certificate
 * in kamal-proxy's Let's Encrypt cache, which moves into Traefik's ACME store; Kamal allows
 * `ssl: true` on a single host only).
 * The starting state is built as Kamal 2.12 and kamal-proxy v0.9.2 leave a host
 * (helpers/kamalHosts); the certificates are made here, by a CA of the test's own.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync, renameSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { eventually, request } from "../../testbed/http";
import { startLoad, type LoadResult } from "../../testbed/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, onHost, repoRoot, sandbox, target } from "../../testbed/sandbox";
import { makeCertificate, type MadeCertificate } from "../../testbed/tls";
import { leaveAsKamal2 } from "../helpers/kamalHosts";

const pool = new SshPool();
const web = ["app1", "app2"];
const WEB = "tlstake.example.test";
const ADMIN = "admin.tlstake.example.test";
const out = (r: PulumiRun) => r.stdout + r.stderr;
let dir: string;
let webCert: MadeCertificate;
let adminCert: MadeCertificate;
let p: PulumiProject;

async function cleanHosts() {
  for (const h of web) {
    const conn = await pool.connect(target(h));
    await conn.exec(
      onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; docker network ls -q --filter name=kamal | xargs -r docker network rm >/dev/null 2>&1; docker volume rm kamal-proxy-config >/dev/null 2>&1; rm -rf /root/.kamal /home/deploy/.kamal; true"),
    );
  }
}

function deployYml(): string {
  const sb = sandbox();
  return [
    `# Kamal 2, as \`kamal deploy\` reads it.`,
    `service: tlstake`,
    `image: kp/testapp`,
    `servers:`,
    `  web:`,
    ...web.map((h) => `    - ${host(h).address}`),
    `  admin:`,
    `    hosts:`,
    `      - ${host("app1").address}`,
    `    proxy:`,
    `      host: ${ADMIN}`,
    `      ssl: true`,
    `      healthcheck:`,
    `        path: /up`,
    `        interval: 1`,
    `proxy:`,
    `  host: ${WEB}`,
    `  ssl:`,
    `    certificate_pem: CERTIFICATE_PEM`,
    `    private_key_pem: PRIVATE_KEY_PEM`,
    `  app_port: 80`,
    `  healthcheck:`,
    `    path: /up`,
    `    interval: 1`,
    `registry:`,
    `  server: ${sb.registry.address}`,
    `  username: ${sb.registry.username}`,
    `  password:`,
    `    - KAMAL_REGISTRY_PASSWORD`,
    ``,
  ].join("\n");
}

/** The certificate a host presents for `name` on 443 (what a browser would see). */
function presented(h: string, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: host(h).address, port: 443, servername: name, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on("error", reject);
  });
}

const fingerprint = (c: MadeCertificate) => new X509Certificate(readFileSync(c.certFile, "utf8")).fingerprint256;

function failed(load: LoadResult[]): number {
  const n = load.reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0);
  if (n > 0) console.error("failed requests:", JSON.stringify(load.map((l) => ({ ...l, samples: l.samples.slice(0, 5) }))));
  return n;
}

beforeAll(async () => {
  await cleanHosts();
  dir = scratchProject("takeover-https", {
    "Pulumi.yaml": "name: kp-takeover-https\nruntime: nodejs\n",
    "package.json": JSON.stringify({ name: "kp-takeover-https", main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/takeover"))};\n`,
    "config/deploy.yml": deployYml(),
    ".kamal/secrets": "CERTIFICATE_PEM=$(cat config/tls/cert.pem)\nPRIVATE_KEY_PEM=$(cat config/tls/key.pem)\n",
  });
  adminCert = makeCertificate(path.join(dir, "certs"), ADMIN, "admin");
  webCert = makeCertificate(path.join(dir, "config/tls"), WEB, "web");
  renameSync(webCert.certFile, path.join(dir, "config/tls/cert.pem"));
  renameSync(webCert.keyFile, path.join(dir, "config/tls/key.pem"));
  webCert = { ...webCert, certFile: path.join(dir, "config/tls/cert.pem"), keyFile: path.join(dir, "config/tls/key.pem") };
  const pem = (c: MadeCertificate) => ({ certificatePem: readFileSync(c.certFile, "utf8"), privateKeyPem: readFileSync(c.keyFile, "utf8") });
  for (const h of web) {
    const conn = await pool.connect(target(h));
    const app = { service: "tlstake", role: "web", version: "v1", host: host(h).address, env: {}, secretEnv: {} };
    await leaveAsKamal2(conn, app, { host: WEB, healthcheckPath: "/up", healthcheckInterval: 1, ssl: { kind: "files", ...pem(webCert) } });
    if (h === "app1") await leaveAsKamal2(conn, { ...app, role: "admin" }, { host: ADMIN, healthcheckPath: "/up", healthcheckInterval: 1, ssl: { kind: "acme", ...pem(adminCert) } });
  }
  p = new PulumiProject(dir, "test");
  await p.ensureStack();
  expect((await p.run(["config", "set", "--stack", p.stack, "version", "v2"])).code).toBe(0);
});

afterAll(async () => {
  if (p) await p.destroy();
  await cleanHosts();
  pool.closeAll();
});

describe("takeover of a kamal-proxy that serves HTTPS", () => {
  it("moves its certificates into Traefik first: the same certificates throughout, no failed request", async () => {
    // kamal-proxy serves both names with their certificates, and redirects plain HTTP.
    for (const h of web) {
      const r = await eventually(`${WEB} over HTTPS from kamal-proxy on ${h}`, async () => {
        const x = await request(`https://${host(h).address}/version`, { host: WEB, ca: webCert.ca }).catch(() => undefined);
        return x?.status === 200 ? x : undefined;
      });
      expect(JSON.parse(r.body).container).toBe("tlstake-web-v1");
      expect(await presented(h, WEB)).toBe(fingerprint(webCert));
    }
    expect(await presented("app1", ADMIN)).toBe(fingerprint(adminCert));

    const preview = await p.preview();
    expect(preview.code, out(preview)).toBe(0);
    for (const h of web) {
      expect(out(preview)).toContain(`${host(h).address}: takes over Kamal 2's kamal-proxy`);
      expect(out(preview)).toContain(`${host(h).address}: tlstake-web: kamal-proxy's certificate for ${WEB} moves into Traefik's certificate store, beside the route, until the app's route brings its own`);
    }
    expect(out(preview)).toContain(`${host("app1").address}: tlstake-admin: kamal-proxy's Let's Encrypt certificate(s) for ${ADMIN} move into Traefik's ACME store (resolver letsencrypt), which renews them from then on`);

    // HTTPS load on every name, on kept-alive and on new connections.
    const loads = [
      ...web.map((h) => ({ h, name: WEB, ca: webCert.ca })),
      { h: "app1", name: ADMIN, ca: adminCert.ca },
    ].flatMap(({ h, name, ca }) => [
      startLoad({ url: `https://${host(h).address}/`, rate: 40, connections: 3, headers: { host: name }, tls: { ca, servername: name }, retryOnStaleConnection: true }),
      startLoad({ url: `https://${host(h).address}/`, rate: 15, newConnections: true, headers: { host: name }, tls: { ca, servername: name } }),
    ]);
    await new Promise((r) => setTimeout(r, 500));
    const up = await p.up();
    await new Promise((r) => setTimeout(r, 500));
    const load = await Promise.all(loads.map((l) => l.stop()));
    expect(up.code, out(up)).toBe(0);
    expect(out(up)).not.toContain("BEGIN");
    expect(failed(load)).toBe(0);
    expect(load.reduce((n, l) => n + l.ok, 0)).toBeGreaterThan(500);
    console.log(`HTTPS takeover: ${load.reduce((n, l) => n + l.total, 0)} requests, 0 failed, ${load.reduce((n, l) => n + l.retried, 0)} sent again after a stale keep-alive connection`);

    for (const h of web) {
      const r = await request(`https://${host(h).address}/version`, { host: WEB, ca: webCert.ca });
      expect(JSON.parse(r.body).container).toBe("tlstake-web-v2");
      expect(await presented(h, WEB)).toBe(fingerprint(webCert));
      expect((await request(`http://${host(h).address}/version`, { host: WEB })).status).toBe(301);
      const conn = await pool.connect(target(h));
      expect((await conn.exec(onHost("docker ps --format '{{.Names}}' | sort"))).stdout.trim().split("\n")).toEqual(
        h === "app1" ? ["tlstake-admin-v2", "tlstake-web-v2", "traefik"] : ["tlstake-web-v2", "traefik"],
      );
    }
    const admin = await request(`https://${host("app1").address}/version`, { host: ADMIN, ca: adminCert.ca });
    expect(JSON.parse(admin.body).container).toBe("tlstake-admin-v2");
    expect(await presented("app1", ADMIN)).toBe(fingerprint(adminCert));
    // Traefik's own from now on: in its ACME store, under its resolver.
    const conn = await pool.connect(target("app1"));
    const store = JSON.parse((await conn.exec(onHost("cat .kamal/proxy/acme/acme.json"))).stdout) as Record<string, { Certificates: { domain: { main: string } }[] }>;
    expect(store.letsencrypt.Certificates.map((c) => c.domain.main)).toEqual([ADMIN]);
    expect((await conn.exec(onHost("stat -c %a .kamal/proxy/acme/acme.json"))).stdout.trim()).toBe("600");
  });

  it("then changes nothing on the next up", async () => {
    const again = await p.up(["--expect-no-changes"]);
    expect(again.code, out(again)).toBe(0);
    for (const h of web) expect(await presented(h, WEB)).toBe(fingerprint(webCert));
    expect(await presented("app1", ADMIN)).toBe(fingerprint(adminCert));
  });
});

/**
 * A Kamal 2 deploy.yml with HTTPS, deployed by KamalApp on the sandbox with the real Pulumi
 * engine: the certificate and key come from `.kamal/secrets` (by `$(cat …)`, as Kamal users
 * keep them) for a role on two hosts; a role with `ssl: true` on one host gets its
 * certificate from the ACME CA (Pebble, by TLS-ALPN-01); `kamal app maintenance --message` and `live` are
 * KamalApp's `maintenance`, with error_pages_path's 503.html as the page.
 */
import { readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { eventually, request } from "../../testbed/http";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, pointName, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";
import { makeCertificate } from "../../testbed/tls";

const pool = new SshPool();
const WEB = "tls.kp.test";
const ADMIN = "admin.kp.test";
let p: PulumiProject;
let dir: string;
let ownCa: string;
let pebbleRoot: string;
const out = (r: PulumiRun) => r.stdout + r.stderr;

const deployYml = (s: ReturnType<typeof sandbox>) => `# Kamal 2, as \`kamal deploy\` reads it.
service: tlsapp
image: kp/testapp
servers:
  web:
    - ${host("app1").address}
    - ${host("app2").address}
  admin:
    hosts:
      - ${host("app1").address}
    proxy:
      host: ${ADMIN}
      ssl: true
proxy:
  host: ${WEB}
  ssl:
    certificate_pem: CERTIFICATE_PEM
    private_key_pem: PRIVATE_KEY_PEM
  response_timeout: 5
  healthcheck:
    path: /up
registry:
  server: ${s.registry.address}
  username: ${s.registry.username}
  password:
    - KAMAL_REGISTRY_PASSWORD
error_pages_path: public
`;

async function set(key: string, value: string, secret = false) {
  const r = await p.run(["config", "set", ...(secret ? ["--secret"] : ["--plaintext"]), "--stack", p.stack, key, value]);
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(async () => {
  for (const h of ["app1", "app2"]) {
    const conn = await pool.connect(target(h));
    await conn.exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; docker network ls -q --filter name=kamal | xargs -r docker network rm >/dev/null 2>&1; rm -rf /root/.kamal; true"));
  }
  const s = sandbox();
  await pointName(ADMIN, host("app1").address);
  pebbleRoot = (await request(s.acme.roots, { ca: readFileSync(s.acme.caCertificatesPath, "utf8") })).body;
  dir = scratchProject("kamal-https", {
    "Pulumi.yaml": "name: kp-kamal-https\nruntime: nodejs\n",
    "package.json": JSON.stringify({ name: "kp-kamal-https", main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/kamal-https"))};\n`,
    "config/deploy.yml": deployYml(s),
    // As Kamal users keep them: the secrets file reads the PEM files (never committed).
    ".kamal/secrets": "KAMAL_REGISTRY_PASSWORD=$KAMAL_REGISTRY_PASSWORD\nCERTIFICATE_PEM=$(cat config/tls/cert.pem)\nPRIVATE_KEY_PEM=$(cat config/tls/key.pem)\n",
    "public/503.html": "<html><body><h1>tlsapp is down</h1><p>{{ .Message }}</p></body></html>\n",
  });
  // The secrets file reads config/tls/cert.pem and key.pem.
  ownCa = makeCertificate(path.join(dir, "config/tls"), WEB, "tls").ca;
  renameSync(path.join(dir, "config/tls/tls.cert.pem"), path.join(dir, "config/tls/cert.pem"));
  renameSync(path.join(dir, "config/tls/tls.key.pem"), path.join(dir, "config/tls/key.pem"));
  p = new PulumiProject(dir, "test");
  await p.ensureStack();
  await set("version", "v1");
  await set("KAMAL_REGISTRY_PASSWORD", s.registry.password, true);
});

afterAll(async () => {
  if (p) await p.destroy();
  pool.closeAll();
});

describe("KamalApp with Kamal 2's proxy.ssl", () => {
  it("serves the web role on both hosts with the certificate from the secrets, and the admin role with one from the ACME CA (TLS-ALPN-01)", async () => {
    const up = await p.up();
    expect(up.code, out(up)).toBe(0);
    expect(out(up)).not.toContain("BEGIN PRIVATE KEY");
    for (const h of ["app1", "app2"]) {
      const r = await eventually(`${WEB} over HTTPS on ${h}`, async () => {
        const x = await request(`https://${host(h).address}/version`, { host: WEB, ca: ownCa }).catch(() => undefined);
        return x?.status === 200 ? x : undefined;
      });
      expect(JSON.parse(r.body).container).toBe("tlsapp-web-v1");
      expect((await request(`http://${host(h).address}/version`, { host: WEB })).status).toBe(301);
    }
    const admin = await eventually("admin over HTTPS from Pebble", async () => {
      const x = await request(`https://${host("app1").address}/version`, { host: ADMIN, ca: pebbleRoot }).catch(() => undefined);
      return x?.status === 200 ? x : undefined;
    }, 60_000, 500);
    expect(JSON.parse(admin.body).container).toBe("tlsapp-admin-v1");
    // Kamal 2's response_timeout reached the route.
    expect((await request(`https://${host("app2").address}/slow?ms=6500`, { host: WEB, ca: ownCa, timeoutMs: 10_000 })).status).toBe(504);
  });

  it("`kamal app maintenance --message` and `kamal app live`: the error_pages_path page, then the app again", async () => {
    await set("maintenance", "Back at noon");
    const on = await p.up();
    expect(on.code, out(on)).toBe(0);
    for (const h of ["app1", "app2"]) {
      const r = await request(`https://${host(h).address}/version`, { host: WEB, ca: ownCa });
      expect([r.status, r.body]).toEqual([503, "<html><body><h1>tlsapp is down</h1><p>Back at noon</p></body></html>\n"]);
    }
    expect((await request(`https://${host("app1").address}/version`, { host: ADMIN, ca: pebbleRoot })).status).toBe(503);
    await set("maintenance", "");
    const live = await p.up();
    expect(live.code, out(live)).toBe(0);
    for (const h of ["app1", "app2"]) expect((await request(`https://${host(h).address}/version`, { host: WEB, ca: ownCa })).status).toBe(200);
  });
});

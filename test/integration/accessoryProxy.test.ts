/**
 * An accessory behind the host's Traefik (Kamal 2's accessory `proxy`) against the sandbox with
 * the real Pulumi engine: routed by its host name once it runs; a new host name rewrites the
 * route and leaves the container running; with a health check, routed once it answers (never:
 * the update fails, the route as it was); a reboot routes to the new container; removing the
 * proxy, or the accessory, removes the route; a changed run directory carries the route along.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { request } from "../../testbed/http";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, onHost, repoRoot, target } from "../../testbed/sandbox";

const pool = new SshPool();
let p: PulumiProject;
const out = (r: PulumiRun) => r.stdout + r.stderr;
const get = (name: string) => request(`http://${host("app1").address}/version`, { host: name });
const containerId = async () => (await (await pool.connect(target("app1"))).exec(onHost("docker inspect -f '{{.Id}}' kpacc-panel"))).stdout.trim();

async function set(key: string, value?: string) {
  const r = value === undefined ? await p.run(["config", "rm", "--stack", p.stack, key]) : await p.run(["config", "set", "--stack", p.stack, key, value]);
  expect(r.code, r.stderr).toBe(0);
}

async function up(): Promise<PulumiRun> {
  const r = await p.up();
  expect(r.code, out(r)).toBe(0);
  return r;
}

describe("an accessory behind the proxy", () => {
  beforeAll(async () => {
    const conn = await pool.connect(target("app1"));
    await conn.exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal /root/.kamal-moved"));
    const dir = scratchProject("accessory-proxy", {
      "Pulumi.yaml": "name: kp-accessory-proxy\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-accessory-proxy", main: "index.ts" }),
      "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/accessoryProxy"))};\n`,
    });
    p = new PulumiProject(dir);
    await p.ensureStack();
  });

  afterAll(async () => {
    if (p) await p.destroy();
    pool.closeAll();
  });

  it("is routed by its host name once it runs; a new name moves the route, the container keeps running", async () => {
    await set("proxyHost", "panel.kp.test");
    const first = await up();
    expect(first.stdout).toContain("panel.kp.test routed to kpacc-panel");
    expect((await get("panel.kp.test")).status).toBe(200);
    const id = await containerId();
    await set("proxyHost", "admin.kp.test");
    const moved = await up();
    expect(moved.stdout).toContain("admin.kp.test routed to kpacc-panel");
    expect((await get("admin.kp.test")).status).toBe(200);
    expect((await get("panel.kp.test")).status).toBe(404);
    expect(await containerId()).toBe(id);
  });

  it("with a health check, is routed once it answers; one it never answers fails the update, the route left as it was", async () => {
    await set("healthPath", "/up");
    const ok = await up();
    expect(ok.stdout).toContain("admin.kp.test routed to kpacc-panel");
    await set("healthPath", "/assets/no-such-file");
    const bad = await p.up();
    expect(bad.code).not.toBe(0);
    expect(out(bad)).toMatch(/app1: waiting for kpacc-panel to answer \/assets\/no-such-file: container kpacc-panel did not become healthy within 3s \(last probe: GET \/assets\/no-such-file answered HTTP 404: "404 page not found"\)/);
    expect((await get("admin.kp.test")).status).toBe(200);
    await set("healthPath", "/up");
    await up();
  });

  it("a reboot routes to the new container; without proxy the route goes, the accessory stays", async () => {
    const before = await containerId();
    await set("env", "two");
    await up();
    expect(await containerId()).not.toBe(before);
    expect((await get("admin.kp.test")).status).toBe(200);
    const rebooted = await containerId();
    await set("proxyHost");
    await up();
    expect((await get("admin.kp.test")).status).toBe(404);
    expect(await containerId()).toBe(rebooted);
    // Back behind the proxy, then removed with the stack: its route goes first.
    await set("proxyHost", "panel.kp.test");
    await up();
    expect((await get("panel.kp.test")).status).toBe(200);
    // Kamal's run_directory changed: Traefik restarts on the new one with the route files
    // carried over, so the route still serves; removing it later finds it there.
    await set("runDirectory", ".kamal-moved");
    const movedDir = await up();
    expect(movedDir.stdout).toContain("copying /root/.kamal/proxy/traefik to /root/.kamal-moved/proxy/traefik (the run directory changed)");
    expect((await get("panel.kp.test")).status).toBe(200);
    const conn = await pool.connect(target("app1"));
    expect((await conn.exec(onHost("docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}' traefik"))).stdout).toContain("/root/.kamal-moved/proxy/traefik ");
    const destroyed = await p.destroy();
    expect(destroyed.code, out(destroyed)).toBe(0);
    expect(destroyed.stdout).toContain("the route of kpacc-panel removed");
  });
});

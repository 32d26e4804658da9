/**
 * The test bed itself: real sshd, real Docker engines, real Traefik, real registry and the
 * real Pulumi engine, reached the way the provider reaches them.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shellJoin } from "../../provider/commands/shell";
import { HostKeyError, SshConnectError } from "../../provider/ssh/errors";
import type { SshConnection } from "../../provider/ssh/executor";
import { SshPool } from "../../provider/ssh/pool";
import { eventually, httpGet } from "../../testbed/http";
import { startLoad } from "../../testbed/load";
import { PulumiProject, scratchProject } from "../../testbed/pulumi";
import { fault, host, sandbox, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
afterAll(() => pool.closeAll());

async function login(conn: SshConnection) {
  const { address, username, password } = sandbox().registry;
  await conn.exec(onHost(shellJoin(["docker", "login", "--username", username, "--password-stdin", address])), {
    stdin: password,
    secrets: [password],
  });
}

async function health(conn: SshConnection, container: string): Promise<string> {
  const r = await conn.exec(onHost(shellJoin(["docker", "inspect", "--format", "{{.State.Health.Status}}", container])));
  return r.stdout.trim();
}

const probe = ["--health-cmd", "/app probe http://127.0.0.1/up", "--health-interval", "1s", "--health-retries", "2"];

describe("sandbox hosts over SSH", () => {
  it("lists its hosts (app1…appN, db1 and fresh1; npm test starts seven app hosts), registries, the ACME CA and the images", () => {
    const s = sandbox();
    const names = s.hosts.map((h) => h.name);
    expect(names.filter((n) => !n.startsWith("app"))).toEqual(["db1", "fresh1"]);
    expect(s.hosts.find((h) => h.name === "fresh1")?.role).toBe("fresh");
    expect(names.filter((n) => n.startsWith("app"))).toEqual(Array.from({ length: names.length - 2 }, (_, i) => `app${i + 1}`));
    expect(new Set(s.hosts.map((h) => h.address)).size).toBe(names.length);
    expect(s.acme.directory).toMatch(/^https:\/\/[\d.]+:14000\/dir$/);
    expect(s.images.app.v1).toBe(`${s.registry.address}/kp/testapp:v1`);
    expect(s.images.traefik).toMatch(new RegExp(`^${s.registry.address}/kp/traefik:v3\\.`));
  });

  for (const name of ["app1", "app2", "db1"]) {
    it(`${name}: host key verified, docker run of the test app becomes healthy (as root and as deploy)`, async () => {
      const root = await pool.connect(target(name));
      const deploy = await pool.connect(target(name, host(name).deployUser));
      expect((await deploy.exec(onHost("id -nG"))).stdout).toMatch(/\bdocker\b/);
      expect((await root.exec(onHost("id -u"))).stdout.trim()).toBe("0");
      // Each host has its own files: a marker written on one host is absent on the others.
      await root.exec(onHost(shellJoin(["sh", "-c", `echo ${name} > /tmp/kp-marker`])));
      expect((await root.exec(onHost("cat /tmp/kp-marker"))).stdout.trim()).toBe(name);

      await login(deploy);
      const c = `kp-testbed-${name}`;
      await deploy.run(onHost(shellJoin(["docker", "rm", "-f", c])));
      await deploy.exec(onHost(shellJoin(["docker", "run", "--detach", "--name", c, ...probe, sandbox().images.app.v1])));
      const status = await eventually(`${c} healthy`, async () =>
        (await health(deploy, c)) === "healthy" ? "healthy" : undefined,
      );
      expect(status).toBe("healthy");
      await deploy.exec(onHost(shellJoin(["docker", "rm", "-f", c])));
    });
  }

  it("keeps files apart per host", async () => {
    const markers = await Promise.all(
      ["app1", "app2", "db1"].map(async (n) => (await (await pool.connect(target(n))).exec(onHost("cat /tmp/kp-marker"))).stdout.trim()),
    );
    expect(markers).toEqual(["app1", "app2", "db1"]);
  });

  it("reuses one connection per host for concurrent commands", async () => {
    const t = target("app2");
    const conn = await pool.connect(t);
    const before = pool.statsFor(t).connections;
    const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => conn.exec(onHost(`echo ${i}`))));
    expect(outs.map((o) => o.stdout.trim())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect((await pool.connect(t)) === conn).toBe(true);
    expect(pool.statsFor(t).connections).toBe(before);
  });

  it("refuses a host whose key does not match known_hosts, and an unknown host", async () => {
    const app1 = host("app1");
    const app2Key = readFileSync(app1.knownHostsPath, "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${host("app2").address} `))!
      .split(" ")
      .slice(1)
      .join(" ");
    const strict = new SshPool();
    const mismatch = strict.connect({ ...target("app1"), knownHostsPath: undefined, knownHosts: `${app1.address} ${app2Key}` });
    await expect(mismatch).rejects.toBeInstanceOf(HostKeyError);
    await expect(mismatch).rejects.toThrow(/does NOT match the key recorded in known_hosts/);
    const unknown = strict.connect({ ...target("app1"), knownHostsPath: undefined, knownHosts: "" });
    await expect(unknown).rejects.toThrow(/is not in known_hosts; connection refused/);
    // A pinned key works without any known_hosts file.
    const app1Key = readFileSync(app1.knownHostsPath, "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${app1.address} `))!
      .split(" ")
      .slice(1)
      .join(" ");
    const pinned = await strict.connect({ ...target("app1"), knownHostsPath: undefined, hostKey: app1Key });
    expect((await pinned.exec(onHost("echo pinned"))).stdout.trim()).toBe("pinned");
    strict.closeAll();
  });

  it("reaches a host through a bastion, and uploads files with a mode over SFTP", async () => {
    const viaBastion = { ...target("db1"), proxy: target("app1") };
    const conn = await pool.connect(viaBastion);
    // db1 sees the connection coming from app1's address, not from this machine's.
    expect((await conn.exec(onHost("echo $SSH_CLIENT"))).stdout.split(" ")[0]).toBe(host("app1").address);
    await conn.upload("/tmp/kp-upload.txt", "secret=1\n", 0o600);
    expect((await conn.exec(onHost("stat -c '%a %s' /tmp/kp-upload.txt"))).stdout.trim()).toBe("600 9");
    await conn.exec(onHost("rm -f /tmp/kp-upload.txt"));
  });

  it("reaches a host through a ProxyCommand (OpenSSH's `ssh -W %h:%p`), and names the command's stderr when it fails", async () => {
    const a1 = host("app1");
    const jump = `ssh -q -i ${a1.privateKeyPath} -o UserKnownHostsFile=${a1.knownHostsPath} -o StrictHostKeyChecking=yes -o BatchMode=yes -W %h:%p root@${a1.address}`;
    const conn = await pool.connect({ ...target("db1"), proxyCommand: jump });
    // db1 sees the connection coming from app1, where `ssh -W` opened it.
    expect((await conn.exec(onHost("echo $SSH_CLIENT"))).stdout.split(" ")[0]).toBe(host("app1").address);
    const broken = new SshPool();
    await expect(broken.connect({ ...target("db1"), proxyCommand: "echo 'no route to the bastion' >&2; exit 1" })).rejects.toThrow(/proxy command: no route to the bastion/);
    broken.closeAll();
  });

  it("reports a failed command with host, command, exit code and stderr tail", async () => {
    const conn = await pool.connect(target("app1"));
    const err = await conn.exec(onHost("echo to-stderr >&2; exit 7")).catch((e) => e);
    expect(err.message).toBe(
      `ssh ${host("app1").address}: command failed with exit code 7: echo to-stderr >&2; exit 7\n--- stderr (tail) ---\nto-stderr`,
    );
    expect(err.exitCode).toBe(7);
  });
});

describe("Traefik in the sandbox", () => {
  let conn: SshConnection;
  const url = () => `http://${host("app1").address}/version`;
  const route = [
    "--label", "traefik.http.routers.kp-web.rule=Host(`kp.test`)",
    "--label", "traefik.http.services.kp-web.loadbalancer.server.port=80",
  ];

  beforeAll(async () => {
    conn = await pool.connect(target("app1"));
    await login(conn);
    await conn.run(onHost("docker rm -f kp-traefik kp-good kp-bad"));
    await conn.exec(
      onHost(shellJoin([
        "docker", "run", "--detach", "--name", "kp-traefik", "--publish", "80:80",
        "--volume", "/var/run/docker.sock:/var/run/docker.sock", sandbox().images.traefik,
        "--providers.docker", "--entrypoints.web.address=:80", "--log.level=INFO",
      ])),
    );
  });
  afterAll(async () => {
    await conn.run(onHost("docker rm -f kp-traefik kp-good kp-bad"));
  });

  it("routes by label to the healthy container and never to the unhealthy one", async () => {
    await conn.exec(onHost(shellJoin(["docker", "run", "--detach", "--name", "kp-good", ...probe, ...route, sandbox().images.app.v1])));
    await conn.exec(onHost(shellJoin(["docker", "run", "--detach", "--name", "kp-bad", ...probe, ...route, sandbox().images.app.broken])));
    await eventually("Traefik routes to kp-good", async () => {
      const r = await httpGet(url(), { host: "kp.test" });
      return r.status === 200 ? r : undefined;
    });
    expect(await health(conn, "kp-bad")).not.toBe("healthy");
    const answers = await Promise.all(Array.from({ length: 30 }, () => httpGet(url(), { host: "kp.test" })));
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(new Set(answers.map((a) => JSON.parse(a.body).version))).toEqual(new Set(["v1"]));

    // With only the unhealthy container left, Traefik has nothing to route to.
    await conn.exec(onHost("docker rm -f kp-good"));
    const gone = await eventually("Traefik drops the route", async () => {
      const r = await httpGet(url(), { host: "kp.test" });
      return r.status !== 200 ? r : undefined;
    });
    expect(gone.status).toBe(404);
  });

  it("carries constant load and counts every request", async () => {
    await conn.run(onHost("docker rm -f kp-good"));
    await conn.exec(onHost(shellJoin(["docker", "run", "--detach", "--name", "kp-good", ...probe, ...route, sandbox().images.app.v1])));
    await eventually("route", async () => ((await httpGet(url(), { host: "kp.test" })).status === 200 ? true : undefined));
    const load = startLoad({ url: url(), rate: 200, headers: { host: "kp.test" } });
    await new Promise((r) => setTimeout(r, 2000));
    const res = await load.stop();
    expect(res.total).toBeGreaterThan(250);
    expect(res.non2xx + res.errors).toBe(0);
  });
});

describe("fault injection", () => {
  it("stops and starts a host's sshd, network and Docker engine", async () => {
    const probePool = new SshPool();
    const t = { ...target("db1"), connectTimeoutMs: 2000 };
    try {
      fault("db1", "ssh", "stop");
      await expect(probePool.connect(t)).rejects.toBeInstanceOf(SshConnectError);
      fault("db1", "ssh", "start");
      const conn = await probePool.connect(t);
      expect((await conn.exec(onHost("echo back"))).stdout.trim()).toBe("back");

      fault("db1", "docker", "stop");
      const down = await conn.run(onHost("docker ps"));
      expect(down.code).not.toBe(0);
      fault("db1", "docker", "start");
      expect((await conn.run(onHost("docker ps"))).code).toBe(0);

      fault("db1", "net", "stop");
      await expect(httpGet(`http://${host("db1").address}:22/`, { timeoutMs: 1500 })).rejects.toThrow();
      fault("db1", "net", "start");
      const again = await new SshPool().connect(t);
      expect((await again.exec(onHost("echo reachable"))).stdout.trim()).toBe("reachable");
      again.close();
    } finally {
      fault("db1", "net", "start");
      fault("db1", "ssh", "start");
      fault("db1", "docker", "start");
      probePool.closeAll();
    }
  });
});

describe("the Pulumi engine", () => {
  it("runs pulumi up and destroy of a dynamic resource on the file backend, showing its progress line", async () => {
    const dir = scratchProject("dynamic", {
      "Pulumi.yaml": "name: kp-dynamic-smoke\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-dynamic-smoke", main: "index.ts" }),
      "index.ts": `
import * as pulumi from "@pulumi/pulumi";
const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: any) {
    console.log("progress: starting " + inputs.label + " (attempt 1)");
    return { id: "id-" + inputs.label, outs: inputs };
  },
  async delete() {},
};
class Smoke extends pulumi.dynamic.Resource {
  constructor(name: string, args: { label: string }) { super(provider, name, args); }
}
export const label = (new Smoke("smoke", { label: "hello-sandbox" }) as any).label;
`,
    });
    const p = new PulumiProject(dir);
    await p.ensureStack();
    const version = await p.run(["version"]);
    const lock = JSON.parse(readFileSync(`${__dirname}/../../package-lock.json`, "utf8"));
    expect(version.stdout.trim()).toBe(`v${lock.packages["node_modules/@pulumi/pulumi"].version}`);

    const up = await p.up();
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("progress: starting hello-sandbox (attempt 1)");
    expect(up.stdout).toMatch(/\+ 2 created/);
    const out = await p.run(["stack", "output", "label", "--stack", p.stack]);
    expect(out.stdout.trim()).toBe("hello-sandbox");
    const destroy = await p.destroy();
    expect(destroy.code).toBe(0);
    expect(destroy.stdout).toMatch(/- 2 deleted/);
  });
});

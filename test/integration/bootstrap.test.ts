/**
 * `pulumi-kamal bootstrap` and `setup` on fresh1, a server as it is before bootstrap (no
 * Docker, the deploy user outside the docker group), then a deploy to it; in the third lane.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { httpGet } from "../../testbed/http";
import { PulumiProject } from "../../testbed/pulumi";
import { fault, host, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";
import { out, runCli as cli } from "../helpers/cli";

const pool = new SshPool();
afterAll(() => pool.closeAll());

describe("pulumi-kamal bootstrap: a new server made ready, then deployed to", () => {
  let b: { dir: string; env: NodeJS.ProcessEnv };
  const sb = sandbox();
  const fresh = host("fresh1");
  const freshState = () => execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "fresh", "fresh1"], { stdio: "inherit" });
  /** As the deploy user, in a new login (its groups as they are now). */
  async function asDeploy(command: string) {
    const p2 = new SshPool();
    try {
      return await (await p2.connect(target("fresh1", fresh.deployUser))).run(onHost(command));
    } finally {
      p2.closeAll();
    }
  }

  beforeAll(() => {
    // The engine stopped and its data gone, the deploy user out of the docker group.
    freshState();
    const dir = mkdtempSync(path.join(repoRoot, "test/.work/cli-bootstrap-"));
    mkdirSync(path.join(dir, "config"));
    mkdirSync(path.join(dir, ".kamal"));
    writeFileSync(
      path.join(dir, "config/deploy.yml"),
      [
        "service: kpboot",
        "image: kp/testapp",
        "servers:",
        "  web:",
        `    - ${fresh.address}`,
        "ssh:",
        `  user: ${fresh.deployUser}`,
        "proxy:",
        "  app_port: 80",
        "  healthcheck:",
        "    path: /up",
        "    interval: 1",
        "registry:",
        `  server: ${sb.registry.address}`,
        `  username: ${sb.registry.username}`,
        "  password:",
        "    - KAMAL_REGISTRY_PASSWORD",
        "",
      ].join("\n"),
    );
    writeFileSync(path.join(dir, ".kamal/secrets"), `KAMAL_REGISTRY_PASSWORD=${sb.registry.password}\n`);
    execFileSync("git", ["init", "-q"], { cwd: dir });
    const { PULUMI_BACKEND_URL: _b, ...env } = new PulumiProject(dir).env;
    b = { dir, env };
  });

  afterAll(async () => {
    if (!b) return;
    const r = spawnSync("pulumi", ["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", "production"], { cwd: b.dir, env: b.env, encoding: "utf8" });
    if (r.status !== 0) console.error(r.stdout + r.stderr);
    freshState();
  });

  it("installs Docker, starts the engine, adds the SSH user to the docker group, creates the network and ~/.kamal; a second run changes nothing; a deploy then serves", async () => {
    const init = await cli(["init", "--known-hosts", fresh.knownHostsPath, "--ssh-key", fresh.privateKeyPath], b);
    expect(init.code, out(init)).toBe(0);
    const set = spawnSync("pulumi", ["config", "set", "--stack", "production", "traefikImage", sb.images.traefik], { cwd: b.dir, env: b.env, encoding: "utf8" });
    expect(set.status, set.stderr).toBe(0);
    // A new server: no Docker, and the deploy user in no group of its own.
    expect((await asDeploy("id -nG")).stdout.trim()).toBe(fresh.deployUser);
    expect((await asDeploy("command -v docker")).code).not.toBe(0);
    // A deploy there fails at once, naming the host and the step, and what fixes it.
    const none = await cli(["deploy", "--version", "v1", "--skip-push"], b);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(new RegExp(`^${fresh.address.replace(/\./g, "\\.")}: [^\n]+: command failed with exit code 127: `, "m"));
    expect(none.stderr).toContain("(Docker is not installed on this host (or not on the SSH user's PATH): pulumi-kamal bootstrap installs it)");
    freshState();

    const r = await cli(["bootstrap"], b);
    expect(r.code, out(r)).toBe(0);
    const engine = (await asDeploy("docker version --format '{{.Server.Version}}'")).stdout.trim();
    expect(engine).toMatch(/^\d+\.\d+/);
    expect(r.stdout).toBe(
      [
        `Bootstrapping ${fresh.address} (stack production, hosts from config/deploy.yml)`,
        `${fresh.address}: installing Docker (apt-get)…`,
        `${fresh.address}: starting the Docker engine (service docker start)…`,
        `${fresh.address} (${fresh.deployUser}): 5 changes`,
        "  + Docker                  installed by apt-get",
        `  + engine                  started (service docker start): Docker ${engine}`,
        `  + docker group            ${fresh.deployUser} added (logged in again)`,
        "  + network kamal           created",
        "  + run directory ~/.kamal  created",
        "",
      ].join("\n"),
    );
    // Debian's package, by apt.
    expect((await asDeploy("dpkg-query -W -f '${Status}' docker.io")).stdout).toBe("install ok installed");
    expect((await asDeploy("id -nG")).stdout.trim().split(" ")).toContain("docker");
    expect((await asDeploy("docker network inspect --format '{{.Name}}' kamal")).stdout.trim()).toBe("kamal");

    const again = await cli(["bootstrap", "--json"], b);
    expect(again.code, out(again)).toBe(0);
    const report = JSON.parse(again.stdout) as { stack: string; hosts: { host: string; user: string; steps: { what: string; changed: boolean; detail: string }[] }[] };
    expect(report).toEqual({
      stack: "production",
      hosts: [
        {
          host: fresh.address,
          user: fresh.deployUser,
          steps: [
            { what: "Docker", changed: false, detail: "installed" },
            { what: "engine", changed: false, detail: `running: Docker ${engine}` },
            { what: "docker group", changed: false, detail: `${fresh.deployUser} is in it` },
            { what: "network kamal", changed: false, detail: "present" },
            { what: "run directory ~/.kamal", changed: false, detail: "present" },
          ],
        },
      ],
    });
    const text = await cli(["bootstrap", "--host", fresh.address], b);
    expect(text.stdout).toContain(`${fresh.address} (${fresh.deployUser}): ready, nothing to change\n`);
    expect((await cli(["bootstrap", "--host", "nowhere"], b)).stderr).toBe(`pulumi-kamal bootstrap: stack production has no host nowhere (hosts: ${fresh.address})\n`);

    // The engine stopped and the user out of the group again: a deploy fails naming the host,
    // the step and the cause (after the wait a restarting engine gets), not with a registry
    // error from a CLI with no engine behind it; bootstrap puts both back.
    fault("fresh1", "docker", "stop");
    expect((await (await pool.connect(target("fresh1"))).run(onHost(`gpasswd -d ${fresh.deployUser} docker`))).code).toBe(0);
    const early = await cli(["deploy", "--version", "v1", "--skip-push"], b);
    expect(early.code).toBe(1);
    const addr = fresh.address.replace(/\./g, "\\.");
    expect(early.stderr).toMatch(new RegExp(`^${addr}: pulling \\S+: the Docker engine did not answer for 6\\ds \\(Cannot connect to the Docker daemon at unix:///var/run/docker.sock\\. Is the docker daemon running\\?\\): is it running\\? \\(pulumi-kamal bootstrap starts it\\): docker image inspect `, "m"));
    const back = await cli(["bootstrap"], b);
    expect(back.code, out(back)).toBe(0);
    expect(back.stdout).toContain(
      [
        `${fresh.address} (${fresh.deployUser}): 2 changes`,
        "  = Docker                  installed",
        `  + engine                  started (service docker start): Docker ${engine}`,
        `  + docker group            ${fresh.deployUser} added (logged in again)`,
        "  = network kamal           present",
        "  = run directory ~/.kamal  present",
      ].join("\n"),
    );

    // kamal setup: bootstrap (nothing left to do), then the deploy.
    const deploy = await cli(["setup", "--version", "v1", "--skip-push"], b);
    expect(deploy.code, out(deploy)).toBe(0);
    const lines = deploy.stdout.split("\n");
    expect(lines.slice(0, 2)).toEqual([`Bootstrapping ${fresh.address} (stack production, hosts from config/deploy.yml)`, `${fresh.address} (${fresh.deployUser}): ready, nothing to change`]);
    expect(lines).toContain("Deploying version v1 (stack production, config version)");
    const served = await httpGet(`http://${fresh.address}/version`);
    expect(served.status).toBe(200);
    expect(JSON.parse(served.body).version).toBe("v1");
    // Everything ran as the deploy user, without sudo.
    expect((await asDeploy("docker ps --format '{{.Names}}' | sort")).stdout.trim().split("\n")).toEqual(["kpboot-web-v1", "traefik"]);
  });
});

/**
 * How the SSH executor authenticates, against the sandbox's real sshd: several keys tried in
 * order (Kamal's keys and key_data), keysOnly leaving the agent's identities out, forwardAgent
 * giving the host's commands the local agent; and a Kamal 2 deploy.yml with two key files,
 * key_data naming a secret, keys_only and forward_agent, deployed by KamalApp.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { httpGet } from "../../testbed/http";
import { PulumiProject, scratchProject } from "../../testbed/pulumi";
import { host, onHost, sandbox, target } from "../../testbed/sandbox";

const pool = new SshPool();
const dir = mkdtempSync(path.join(os.tmpdir(), "ssh-auth-"));
const wrongKey = path.join(dir, "wrong");
const rightKey = () => host("app1").privateKeyPath;
let agent: ChildProcess | undefined;
const agentSock = path.join(dir, "agent.sock");

beforeAll(async () => {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", wrongKey]);
  // An agent holding the sandbox's key, as a user's ssh-agent would.
  agent = spawn("ssh-agent", ["-D", "-a", agentSock], { stdio: "ignore" });
  for (let i = 0; i < 50; i++) {
    try {
      execFileSync("ssh-add", [rightKey()], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: "ignore" });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

afterAll(() => {
  pool.closeAll();
  agent?.kill();
});

describe("SSH authentication: several keys, keys only, agent forwarding", () => {
  const base = () => {
    const { privateKey: _k, ...t } = target("app1");
    return { ...t, dialAttempts: 1 };
  };

  it("tries each key in order until one is accepted (key text first, then the files)", async () => {
    const conn = await new SshPool().connect({ ...base(), privateKey: readFileSync(wrongKey, "utf8"), privateKeyPaths: [wrongKey, rightKey()] });
    expect((await conn.exec(onHost("echo in"))).stdout.trim()).toBe("in");
  });

  it("keysOnly: the agent's identities are not offered; without it they are", async () => {
    const p = new SshPool();
    await expect(p.connect({ ...base(), privateKeyPath: wrongKey, agent: agentSock, keysOnly: true })).rejects.toThrow(/authentication/i);
    const conn = await p.connect({ ...base(), privateKeyPath: wrongKey, agent: agentSock });
    expect((await conn.exec(onHost("echo in"))).stdout.trim()).toBe("in");
    p.closeAll();
  });

  it("forwardAgent: the host's commands get the local agent", async () => {
    const forwarded = await pool.connect({ ...base(), agent: agentSock, forwardAgent: true });
    expect((await forwarded.exec(onHost('test -S "$SSH_AUTH_SOCK" && echo forwarded'))).stdout.trim()).toBe("forwarded");
    const plain = await new SshPool().connect({ ...base(), privateKeyPath: rightKey() });
    expect((await plain.exec(onHost('echo "[$SSH_AUTH_SOCK]"'))).stdout.trim()).toBe("[]");
  });
});

describe("a Kamal 2 deploy.yml with two key files, key_data naming a secret, keys_only and forward_agent, a role on a network of its own, an accessory's mode and owner", () => {
  it("deploys with the keys deploy.yml names; the role joins its network beside kamal and is served", async () => {
    const sb = sandbox();
    const app1 = host("app1");
    await (await pool.connect(target("app1"))).exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal ~/kpkeys-store"));
    const project = scratchProject("ssh-keys", {
      "Pulumi.yaml": "name: kp-ssh-keys\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-ssh-keys", main: "index.ts" }),
      "config/deploy.yml": [
        "service: kpkeys",
        `image: ${sb.images.app.v1.replace(`${sb.registry.address}/`, "").split(":")[0]}`,
        "servers:",
        "  web:",
        `    hosts: [${app1.address}]`,
        // A network of the app's own: added beside kamal, as Kamal 2's docker run adds it.
        "    options: { network: kpkeys-backend }",
        "proxy:",
        "  host: keys.example.test",
        "  app_port: 80",
        "  healthcheck: { path: /up, interval: 1 }",
        "registry:",
        `  server: ${sb.registry.address}`,
        `  username: ${sb.registry.username}`,
        "  password: [KAMAL_REGISTRY_PASSWORD]",
        // An accessory whose data directory and file have Kamal's mode and owner.
        "accessories:",
        "  store:",
        `    image: ${sb.images.app.v1}`,
        `    host: ${app1.address}`,
        "    files:",
        '      - { local: config/store.conf, remote: /etc/store.conf, mode: "0640", owner: "1234:1234" }',
        "    directories:",
        '      - { local: data, remote: /data, mode: "0700", owner: "1234:1234" }',
        "ssh:",
        `  user: ${app1.user}`,
        `  port: ${app1.port}`,
        `  keys: [${wrongKey}, ${rightKey()}]`,
        "  key_data: [DEPLOY_KEY]",
        "  keys_only: true",
        "  forward_agent: true",
      ].join("\n"),
      ".kamal/secrets": `KAMAL_REGISTRY_PASSWORD=${sb.registry.password}\nDEPLOY_KEY=$(cat ${wrongKey})\n`,
      "config/store.conf": "setting = 1\n",
      "index.ts": [
        'import * as pulumi from "@pulumi/pulumi";',
        'import { KamalApp } from "pulumi-kamal";',
        "const config = new pulumi.Config();",
        'const app = new KamalApp("kpkeys", {',
        '  configFile: `${__dirname}/config/deploy.yml`,',
        '  version: "v1",',
        '  traefikImage: config.require("traefikImage"),',
        '  ssh: { knownHostsPath: config.require("knownHostsPath") },',
        "});",
        "export const containers = app.service.containers;",
      ].join("\n"),
    });
    const p = new PulumiProject(project);
    await p.ensureStack();
    for (const [k, v] of [["traefikImage", sb.images.traefik], ["knownHostsPath", app1.knownHostsPath]]) {
      expect((await p.run(["config", "set", "--stack", p.stack, k, v])).code).toBe(0);
    }
    const up = await p.up();
    try {
      expect(up.code, up.stdout + up.stderr).toBe(0);
      expect(up.stdout).not.toMatch(/ssh\.(keys|key_data|keys_only|forward_agent)/);
      expect(JSON.parse((await httpGet(`http://${app1.address}/version`, { host: "keys.example.test" })).body).version).toBe("v1");
      const networks = (await (await pool.connect(target("app1"))).exec(onHost("docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' kpkeys-web-v1"))).stdout.trim().split(" ");
      expect(networks).toEqual(["kamal", "kpkeys-backend"]);
      const conn = await pool.connect(target("app1"));
      expect((await conn.exec(onHost("stat -c '%a %u:%g' ~/kpkeys-store/data ~/kpkeys-store/etc/store.conf"))).stdout.trim().split("\n")).toEqual(["700 1234:1234", "640 1234:1234"]);
    } finally {
      const down = await p.destroy();
      expect(down.code, down.stdout + down.stderr).toBe(0);
    }
  });
});

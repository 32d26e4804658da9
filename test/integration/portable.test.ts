/**
 * One stack, many checkouts: deployed from one directory, then refreshed, updated and
 * destroyed from a second checkout at another path and from a project that installs the
 * package from an `npm pack` tarball, as a CI runner and a user would. The provider text in
 * the state names no path, so each finds the implementation in its own node_modules.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { makeBuildApp } from "../helpers/buildApp";
import { httpGet } from "../../testbed/http";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
const out = (r: PulumiRun) => r.stdout + r.stderr;
const tmp = mkdtempSync(path.join(os.tmpdir(), "kp-portable-"));

/** The program, in plain JavaScript as a user's project might have it: it names the package. */
function program(): string {
  const s = sandbox();
  const h = s.hosts.find((x) => x.name === "app1")!;
  return `
const pulumi = require("@pulumi/pulumi");
const kamal = require("pulumi-kamal");
const cfg = new pulumi.Config();
const svc = new kamal.Service("kpport", {
  image: ${JSON.stringify(`${s.registry.address}/kp/testapp`)},
  version: cfg.require("version"),
  registry: { server: ${JSON.stringify(s.registry.address)}, username: ${JSON.stringify(s.registry.username)}, password: cfg.requireSecret("registryPassword") },
  ssh: { user: "root", privateKeyPath: ${JSON.stringify(h.privateKeyPath)}, knownHostsPath: ${JSON.stringify(h.knownHostsPath)}, connectTimeout: 5 },
  env: { secret: { TOKEN: "portable-plain-token-31a7" } },
  roles: { jobs: { hosts: [{ name: "app1", address: ${JSON.stringify(h.address)} }], env: { clear: { PORT: "8090" } } } },
});
exports.version = svc.resources.jobs.app1.runningVersion;
`;
}

/** A user's project with the package installed from its `npm pack` tarball (made once). */
let packedDir: string | undefined;
function packedProject(): string {
  if (packedDir) return packedDir;
  const packed = execFileSync("npm", ["pack", "--silent", "--pack-destination", tmp], { cwd: repoRoot, encoding: "utf8" }).trim().split("\n").pop()!;
  const projectDir = path.join(tmp, "user-project");
  mkdirSync(projectDir);
  for (const [f, c] of Object.entries(FILES("kp-portable-c"))) writeFileSync(path.join(projectDir, f), c);
  // A Pulumi project has its own @pulumi/pulumi (a range, as `pulumi new` writes it); the
  // package's is a peer dependency, so the project's is the one both use.
  const sdk = (JSON.parse(readFileSync(path.join(repoRoot, "node_modules/@pulumi/pulumi/package.json"), "utf8")) as { version: string }).version;
  writeFileSync(path.join(projectDir, "package.json"), JSON.stringify({ name: "kp-portable-c", main: "index.js", dependencies: { "@pulumi/pulumi": `^${sdk}`, "pulumi-kamal": `file:${path.join(tmp, packed)}` } }));
  execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: projectDir, stdio: "inherit" });
  packedDir = projectDir;
  return projectDir;
}

const FILES = (name: string) => ({
  "Pulumi.yaml": `name: kp-portable\nruntime: nodejs\n`,
  "package.json": JSON.stringify({ name, main: "index.js" }),
  "index.js": program(),
});

let a: PulumiProject;
let stateDir: string;

/** A project elsewhere sharing A's backend and stack settings (the encryption salt). */
function elsewhere(dir: string): PulumiProject {
  copyFileSync(path.join(a.dir, "Pulumi.test.yaml"), path.join(dir, "Pulumi.test.yaml"));
  return new PulumiProject(dir, "test", { backendDir: stateDir });
}

async function version(p: PulumiProject): Promise<string> {
  const r = await p.run(["stack", "output", "version", "--stack", "test"]);
  return r.stdout.trim();
}

async function runningOn(): Promise<string> {
  const conn = await pool.connect(target("app1"));
  return (await conn.exec(onHost("docker ps --filter label=service=kpport --format '{{.Names}}'"))).stdout.trim();
}

beforeAll(async () => {
  const conn = await pool.connect(target("app1"));
  await conn.exec(onHost("docker ps -aq --filter label=service=kpport | xargs -r docker rm -f >/dev/null"));
  const dir = scratchProject("portable-a", FILES("kp-portable-a"));
  stateDir = path.join(dir, ".pulumi-state");
  a = new PulumiProject(dir);
  await a.ensureStack();
  for (const [k, v, secret] of [["version", "v1", false], ["registryPassword", sandbox().registry.password, true]] as const) {
    const r = await a.run(["config", "set", ...(secret ? ["--secret"] : []), "--stack", "test", k, v]);
    expect(r.code, out(r)).toBe(0);
  }
});

afterAll(() => {
  pool.closeAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe("a stack used from any checkout", () => {
  it("deploys from the first checkout; the state names no path of this machine", async () => {
    const up = await a.up();
    expect(up.code, out(up)).toBe(0);
    expect(await runningOn()).toBe("kpport-jobs-v1");
    const state = (await a.run(["stack", "export", "--stack", "test"])).stdout;
    const texts = [...state.matchAll(/"__provider": "((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    expect(texts.length).toBeGreaterThan(0);
    for (const t of texts) {
      expect(t).not.toContain(repoRoot);
      expect(t).toContain('require.resolve("pulumi-kamal/provider", { paths: [process.cwd()] })');
    }
  });

  it("refreshes, previews no change and deploys a new version from a second checkout at another path", async () => {
    // A second checkout: the repository's files at another path, its own build and links.
    const clone = path.join(tmp, "checkout");
    const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard"], { cwd: repoRoot, encoding: "utf8" }).split("\n").filter(Boolean);
    for (const f of files) {
      if (f.startsWith("test/.work/")) continue;
      mkdirSync(path.dirname(path.join(clone, f)), { recursive: true });
      try {
        copyFileSync(path.join(repoRoot, f), path.join(clone, f));
      } catch {
        /* listed but deleted in the work tree */
      }
    }
    mkdirSync(path.join(clone, "node_modules"));
    for (const m of readdirSync(path.join(repoRoot, "node_modules"))) {
      if (m !== "pulumi-kamal") symlinkSync(path.join(repoRoot, "node_modules", m), path.join(clone, "node_modules", m));
    }
    symlinkSync("..", path.join(clone, "node_modules", "pulumi-kamal"));
    execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: clone, stdio: "inherit" });
    const projectDir = path.join(clone, "deploy");
    mkdirSync(projectDir);
    for (const [f, c] of Object.entries(FILES("kp-portable-b"))) writeFileSync(path.join(projectDir, f), c);
    const b = elsewhere(projectDir);

    const refresh = await b.refresh();
    expect(refresh.code, out(refresh)).toBe(0);
    const same = await b.preview(["--expect-no-changes"]);
    expect(same.code, out(same)).toBe(0);
    const noop = await b.up(["--expect-no-changes"]);
    expect(noop.code, out(noop)).toBe(0);
    expect((await b.run(["config", "set", "--stack", "test", "version", "v2"])).code).toBe(0);
    const up = await b.up();
    expect(up.code, out(up)).toBe(0);
    expect(await runningOn()).toBe("kpport-jobs-v2");
    expect(await version(b)).toBe("v2");
  });

  it("refreshes, updates and destroys from a project that installs the package from its npm pack tarball", async () => {
    const projectDir = packedProject();
    // One copy of the SDK in the user's project: the program's resources and the package's
    // components register through the same one.
    const sdks = execFileSync("find", ["node_modules", "-path", "*/@pulumi/pulumi/package.json"], { cwd: projectDir, encoding: "utf8" }).trim().split("\n");
    expect(sdks).toEqual(["node_modules/@pulumi/pulumi/package.json"]);
    // Only the public entry points: the components, and the provider the engine loads.
    const exported = (JSON.parse(readFileSync(path.join(projectDir, "node_modules/pulumi-kamal/package.json"), "utf8")) as { exports: Record<string, unknown> }).exports;
    expect(Object.keys(exported)).toEqual([".", "./provider", "./package.json"]);
    expect(existsSync(path.join(projectDir, "node_modules/pulumi-kamal/LICENSE"))).toBe(true);
    const c = elsewhere(projectDir);
    // A's stack settings, brought up to the version the second checkout deployed.
    expect((await c.run(["config", "set", "--stack", "test", "version", "v2"])).code).toBe(0);

    const refresh = await c.refresh();
    expect(refresh.code, out(refresh)).toBe(0);
    const noop = await c.up(["--expect-no-changes"]);
    expect(noop.code, out(noop)).toBe(0);
    expect((await c.run(["config", "set", "--stack", "test", "version", "v1"])).code).toBe(0);
    const up = await c.up();
    expect(up.code, out(up)).toBe(0);
    expect(await runningOn()).toBe("kpport-jobs-v1");
    // The package's command, as `npx` finds it in a project that depends on the package.
    const details = spawnSync("npx", ["--no-install", "pulumi-kamal", "details", "--stack", "test"], { cwd: projectDir, env: c.env, encoding: "utf8" });
    expect(details.status, details.stdout + details.stderr).toBe(0);
    expect(details.stdout).toMatch(/kpport\s+jobs\s+.*\s+v1\s+kpport-jobs-v1\s+running/);
    const destroy = await c.destroy();
    expect(destroy.code, out(destroy)).toBe(0);
    const conn = await pool.connect(target("app1"));
    expect((await conn.exec(onHost("docker ps -a --filter label=service=kpport --format '{{.Names}}'"))).stdout.trim()).toBe("");
  });

  it("init on a Kamal project that has no package.json, with pulumi-kamal from its tarball, then deploy: built and served", async () => {
    const bin = path.join(packedProject(), "node_modules/.bin/pulumi-kamal");
    const sb = sandbox();
    const secret = "portable-build-secret-0d1e";
    const app = makeBuildApp("kamal-app", { secret, label: "portable", base: tmp });
    mkdirSync(path.join(app.dir, "config"));
    mkdirSync(path.join(app.dir, ".kamal"));
    writeFileSync(
      path.join(app.dir, "config/deploy.yml"),
      `service: kpportk\nimage: kp/kpportk\nservers:\n  web:\n    - ${host("app1").address}\nproxy:\n  host: kpportk.example.test\n  healthcheck: { path: /up, interval: 1 }\n` +
        `registry:\n  server: ${sb.registry.address}\n  username: ${sb.registry.username}\n  password: [KAMAL_REGISTRY_PASSWORD]\nbuilder:\n  arch: amd64\n  driver: docker\n  secrets: [BUILD_TOKEN]\n`,
    );
    writeFileSync(path.join(app.dir, ".kamal/secrets"), `KAMAL_REGISTRY_PASSWORD=${sb.registry.password}\nBUILD_TOKEN=${secret}\n`);
    app.commit("portable");
    const { PULUMI_BACKEND_URL: _b, ...inherited } = new PulumiProject(app.dir).env;
    const env = { ...inherited, DOCKER_HOST: sb.deployer.dockerHost };
    const run = (args: string[]) => spawnSync(bin, args, { cwd: app.dir, env, encoding: "utf8" });
    const init = run(["init", "--known-hosts", sb.hosts[0].knownHostsPath, "--ssh-key", sb.hosts[0].privateKeyPath]);
    expect(init.status, init.stdout + init.stderr).toBe(0);
    expect(existsSync(path.join(app.dir, "package.json"))).toBe(false);
    const set = spawnSync("pulumi", ["config", "set", "--stack", "production", "traefikImage", sb.images.traefik], { cwd: app.dir, env, encoding: "utf8" });
    expect(set.status, set.stderr).toBe(0);
    try {
      const deploy = run(["deploy"]);
      expect(deploy.status, deploy.stdout + deploy.stderr).toBe(0);
      expect(deploy.stdout).toMatch(/local builder: pushed \S+\/kp\/kpportk:[0-9a-f]{40} sha256:/);
      const served = await httpGet(`http://${host("app1").address}/version`, { host: "kpportk.example.test" });
      expect(JSON.parse(served.body).version).toBe("portable");
    } finally {
      const destroy = spawnSync("pulumi", ["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", "production"], { cwd: app.dir, env, encoding: "utf8" });
      expect(destroy.status, destroy.stdout + destroy.stderr).toBe(0);
    }
  });
});

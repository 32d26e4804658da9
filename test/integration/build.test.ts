/**
 * Images built from a commit and deployed in the same update, against the sandbox with the
 * real Pulumi engine, the deploying machine's own Docker engine and buildx: a hand-written
 * program (Image + Service) and a Kamal 2 project driven by pulumi-kamal. Under load: the
 * second commit swaps in with 0 failed requests and the hosts run its digest; an unchanged
 * commit builds nothing; the build secret reaches the build and appears in no state file,
 * output, command line or image layer; a failing build changes nothing; a remote builder
 * (a sandbox host's engine over SSH); Kamal 2's local registry with the sandbox registry
 * stopped. Runs in lane four (testbed/lane.ts).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runCli } from "../helpers/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { dockerfile, makeBuildApp, type BuildApp } from "../helpers/buildApp";
import { createHash } from "node:crypto";
import { httpGet } from "../../testbed/http";
import { startLoad, type LoadResult } from "../../testbed/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, registryFault, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";

const SECRET = "build-secret-9c41e07b";
const pool = new SshPool();
const sb = sandbox();
const out = (r: PulumiRun) => r.stdout + r.stderr;
const outputs: string[] = [];
const web = ["app1", "app2"];

afterAll(() => pool.closeAll());

async function sh(h: string, command: string): Promise<string> {
  return (await (await pool.connect(target(h))).exec(onHost(command))).stdout.trim();
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** The deploying machine's engine, as the build used it. */
function deployerDocker(args: string[], opts: { encoding?: "buffer" } = {}): Buffer | string {
  return execFileSync("docker", args, { env: { ...process.env, DOCKER_HOST: sb.deployer.dockerHost }, maxBuffer: 1 << 28, ...(opts.encoding ? {} : { encoding: "utf8" }) });
}

async function version(h: string, hostHeader?: string): Promise<string> {
  const r = await httpGet(`http://${host(h).address}/version`, hostHeader ? { host: hostHeader } : {});
  expect(r.status, r.body).toBe(200);
  return JSON.parse(r.body).version;
}

/** `fn` under constant load through both hosts' Traefik; the failed requests. */
async function underLoad<T>(fn: () => Promise<T>, hostHeader?: string): Promise<{ result: T; failed: number; total: number; load: LoadResult[] }> {
  const headers = hostHeader ? { host: hostHeader } : undefined;
  const loads = web.flatMap((h) => [
    startLoad({ url: `http://${host(h).address}/version`, rate: 60, connections: 3, ...(headers ? { headers } : {}) }),
    startLoad({ url: `http://${host(h).address}/version`, rate: 20, newConnections: true, ...(headers ? { headers } : {}) }),
  ]);
  await new Promise((r) => setTimeout(r, 500));
  const result = await fn();
  await new Promise((r) => setTimeout(r, 500));
  const load = await Promise.all(loads.map((l) => l.stop()));
  const failed = load.reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0);
  if (failed) console.error("failed requests:", JSON.stringify(load.map((l) => ({ ...l, samples: l.samples.slice(0, 5) }))));
  return { result, failed, total: load.reduce((n, l) => n + l.total, 0), load };
}

/** The digest the host's container of the service runs ("sha256:…"). */
async function runningDigest(h: string, service: string): Promise<string> {
  const name = await sh(h, `docker ps --filter label=service=${service} --filter label=role=web --format '{{.Names}}' | head -1`);
  const image = await sh(h, `docker container inspect --format '{{.Image}}' ${name}`);
  const digests = await sh(h, `docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' ${image}`);
  return digests.split(" ").find((d) => d.includes("@"))!.split("@")[1];
}

describe("an Image built and deployed by pulumi up (a program with Image and Service)", () => {
  let app: BuildApp;
  let p: PulumiProject;
  const up = async () => {
    const r = await p.up();
    outputs.push(out(r));
    return r;
  };
  const set = async (key: string, value: string, secret = false) => {
    const r = await p.run(["config", "set", ...(secret ? ["--secret"] : []), "--stack", p.stack, key, value]);
    expect(r.code, r.stderr).toBe(0);
  };
  const stackOutput = async () => JSON.parse((await p.run(["stack", "output", "--json", "--show-secrets", "--stack", p.stack])).stdout) as { version: string; digest: string };

  beforeAll(async () => {
    for (const h of web) await sh(h, "docker ps -aq --filter label=service=kpbuilt | xargs -r docker rm -f >/dev/null; docker ps -aq --filter name=traefik | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
    app = makeBuildApp("build-app", { secret: SECRET, label: "one" });
    const dir = scratchProject("build", {
      "Pulumi.yaml": "name: kp-build\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-build", main: "index.ts" }),
      "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/build"))};\n`,
    });
    p = new PulumiProject(dir);
    // The build runs on the deploying machine's engine (the sandbox's), as a laptop's would.
    process.env.DOCKER_HOST = sb.deployer.dockerHost;
    await p.ensureStack();
    await set("appRoot", app.dir);
    await set("buildSecret", SECRET, true);
  });

  afterAll(async () => {
    if (p) await p.destroy();
    delete process.env.DOCKER_HOST;
  });

  it("builds the commit, pushes it and deploys its digest; the build saw the secret", async () => {
    const r = await up();
    expect(r.code, out(r)).toBe(0);
    expect(r.stdout).toMatch(/\[kamal\] local builder: building \S+\/kp\/built:[0-9a-f]{40} \(local builder, docker driver, clean export of [0-9a-f]{7}\)/);
    const o = await stackOutput();
    expect(o.version).toBe(app.git("rev-parse", "HEAD"));
    for (const h of web) {
      expect(await version(h)).toBe("one");
      expect(await runningDigest(h, "kpbuilt")).toBe(o.digest);
    }
    expect((await httpGet(`http://${host("app1").address}/assets/secret-check.txt`)).body.trim()).toBe("ok");
  });

  it("an unchanged commit builds nothing; an uncommitted change is not in a clean export", async () => {
    writeFileSync(path.join(app.dir, "rootfs/public/assets/uncommitted.txt"), "not committed\n");
    const preview = await p.preview();
    expect(preview.code, out(preview)).toBe(0);
    expect(preview.stdout).not.toMatch(/kamal:Image: \(update\)|building/);
    const r = await up();
    expect(r.code, out(r)).toBe(0);
    expect(r.stdout).not.toMatch(/building/);
    expect(r.stdout).toMatch(/\d+ unchanged/);
    expect(r.stdout).not.toMatch(/updated|created/);
  });

  it("a second commit is built and swapped in under load with 0 failed requests; the hosts run its digest", async () => {
    const before = await stackOutput();
    app.commit("two");
    const preview = await p.preview();
    expect(preview.stdout).toMatch(/~ pulumi-nodejs:dynamic\/kamal:Image: \(update\)/);
    const { result, failed, total } = await underLoad(up);
    expect(result.code, out(result)).toBe(0);
    expect(failed).toBe(0);
    expect(total).toBeGreaterThan(300);
    const o = await stackOutput();
    expect(o.digest).not.toBe(before.digest);
    for (const h of web) {
      expect(await version(h)).toBe("two");
      expect(await runningDigest(h, "kpbuilt")).toBe(o.digest);
    }
  });

  it("a failing build fails before any host changes: the old version serves, the state keeps it", async () => {
    const before = await stackOutput();
    writeFileSync(path.join(app.dir, "Dockerfile"), `${readFileSync(path.join(app.dir, "Dockerfile"), "utf8")}RUN ["/bin/sh", "-c", "echo compiling assets; echo 'asset pipeline broke' >&2; exit 3"]\n`);
    app.git("commit", "-qam", "broken");
    const { result, failed } = await underLoad(up);
    expect(result.code).not.toBe(0);
    expect(failed).toBe(0);
    const text = out(result);
    // The step, the command (secrets by id only) and the builder's last lines.
    expect(text).toMatch(/local builder: building \S+\/kp\/built:[0-9a-f]{40}: failed with exit code 1: docker buildx build --output=type=registry .*--secret id=BUILD_TOKEN /);
    expect(text).toContain("asset pipeline broke");
    expect(text).not.toMatch(/kpbuilt-web-app\d updated/);
    for (const h of web) expect(await version(h)).toBe("two");
    expect(await stackOutput()).toEqual(before);
    app.git("revert", "--no-edit", "HEAD");
  });

  it("the secret is in no state file, output, image layer or history", async () => {
    const state = filesUnder(path.join(p.dir, ".pulumi-state")).map((f) => readFileSync(f, "utf8")).join("\n");
    expect(state).toContain("kpbuilt");
    expect(state).not.toContain(SECRET);
    expect(outputs.join("\n")).not.toContain(SECRET);
    const o = await stackOutput();
    const ref = `${sb.registry.address}/kp/built:${o.version}`;
    const layers = deployerDocker(["image", "save", ref], { encoding: "buffer" }) as Buffer;
    expect(layers.length).toBeGreaterThan(1_000_000);
    expect(layers.includes(Buffer.from(SECRET))).toBe(false);
    expect(deployerDocker(["history", "--no-trunc", ref]) as string).not.toContain(SECRET);
  });

  it("a platform the local builder cannot produce is refused at preview, with the reason", async () => {
    await set("platforms", JSON.stringify(["linux/arm64"]));
    const preview = await p.preview();
    expect(preview.code).not.toBe(0);
    expect(out(preview)).toContain("platforms: linux/arm64 cannot be built by the local Docker engine's builder (it builds linux/amd64, linux/386): name a remote builder of that architecture, or register QEMU (binfmt) with the engine and use the docker-container driver");
    await p.run(["config", "rm", "platforms", "--stack", p.stack]);
  });

  it("builds on a remote builder: a sandbox host's Docker engine over SSH", async () => {
    await set("remoteBuilder", "app1");
    app.commit("remote");
    const r = await up();
    expect(r.code, out(r)).toBe(0);
    expect(r.stdout).toMatch(/\[kamal\] builder \S+: building \S+ \(remote builder \S+, docker driver, clean export of [0-9a-f]{7}\)/);
    // Built there: the builder host has it without pulling.
    expect(r.stdout).toMatch(/\[kamal\] app1: \S+ \(sha256:[0-9a-f]{12}\) is already on the host \(no pull\)/);
    for (const h of web) expect(await version(h)).toBe("remote");
    await p.run(["config", "rm", "remoteBuilder", "--stack", p.stack]);
  });

  it("Kamal 2's local registry: pushed to a registry on this machine, pulled through SSH, the sandbox registry stopped", async () => {
    await set("repository", "localhost:5555/kp/built");
    app.commit("local-registry");
    registryFault("stop");
    try {
      const { result, failed } = await underLoad(up);
      expect(result.code, out(result)).toBe(0);
      expect(failed).toBe(0);
      expect(result.stdout).toMatch(/\[kamal\] app2: pulling localhost:5555\/kp\/built@sha256:[0-9a-f]{64} from the local registry \(through SSH\)/);
    } finally {
      registryFault("start");
    }
    for (const h of web) expect(await version(h)).toBe("local-registry");
    // The tunnel is gone with the deploy: nothing listens on the hosts' 5555 now.
    expect(await sh("app1", "(exec 3<>/dev/tcp/127.0.0.1/5555) 2>/dev/null && echo open || echo closed")).toBe("closed");
  });
});

describe("pulumi-kamal deploy on a Kamal 2 project: build, push, deploy the commit", () => {
  let app: BuildApp;
  let k: { dir: string; env: NodeJS.ProcessEnv };
  const HOST = "kpk2.example.test";
  // Kamal's run_directory, absolute: the lock, the audit log and the proxy's files go there
  // (under /home: each sandbox host has its own).
  const RUN_DIR = "/home/kpk2-run";
  const cli = async (args: string[]): Promise<PulumiRun> => {
    const r = await runCli(args, k);
    outputs.push(r.stdout + r.stderr);
    return r;
  };

  beforeAll(async () => {
    for (const h of web) await sh(h, `docker ps -aq --filter label=service=kpk2 | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal ${RUN_DIR}`);
    app = makeBuildApp("kamal2-build", { secret: SECRET, label: "k-one" });
    mkdirSync(path.join(app.dir, "config"));
    mkdirSync(path.join(app.dir, ".kamal/hooks"), { recursive: true });
    writeFileSync(
      path.join(app.dir, "config/deploy.yml"),
      [
        "service: kpk2",
        "image: kp/kpk2",
        "servers:",
        "  web:",
        ...web.map((h) => `    - ${host(h).address}`),
        "proxy:",
        `  host: ${HOST}`,
        "  app_port: 80",
        "  healthcheck: { path: /up, interval: 1, timeout: 3 }",
        "registry:",
        `  server: ${sb.registry.address}`,
        `  username: ${sb.registry.username}`,
        "  password: [KAMAL_REGISTRY_PASSWORD]",
        "builder:",
        "  arch: amd64",
        "  driver: docker",
        "  secrets: [BUILD_TOKEN]",
        `run_directory: ${RUN_DIR}`,
        "",
      ].join("\n"),
    );
    writeFileSync(path.join(app.dir, ".kamal/secrets"), "KAMAL_REGISTRY_PASSWORD=$KAMAL_REGISTRY_PASSWORD\nBUILD_TOKEN=$BUILD_TOKEN_SOURCE\n");
    // Kamal's pre-build hook: run before each build, with Kamal's env.
    writeFileSync(path.join(app.dir, ".kamal/hooks/pre-build"), '#!/bin/sh\necho "$KAMAL_VERSION" >> "$(dirname "$0")/../../pre-build.log"\n', { mode: 0o755 });
    writeFileSync(path.join(app.dir, ".gitignore"), "pre-build.log\n");
    app.commit("k-one");
    const { PULUMI_BACKEND_URL: _b, ...env } = new PulumiProject(app.dir).env;
    k = { dir: app.dir, env: { ...env, DOCKER_HOST: sb.deployer.dockerHost, KAMAL_REGISTRY_PASSWORD: sb.registry.password, BUILD_TOKEN_SOURCE: SECRET } };
    const init = await cli(["init", "--known-hosts", sb.hosts[0].knownHostsPath, "--ssh-key", sb.hosts[0].privateKeyPath]);
    expect(init.code, out(init)).toBe(0);
    const set = spawnSync("pulumi", ["config", "set", "--stack", "production", "traefikImage", sb.images.traefik], { cwd: k.dir, env: k.env, encoding: "utf8" });
    expect(set.status, set.stderr).toBe(0);
  });

  afterAll(async () => {
    if (!k) return;
    const r = spawnSync("pulumi", ["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", "production"], { cwd: k.dir, env: k.env, encoding: "utf8" });
    if (r.status !== 0) console.error(r.stdout + r.stderr);
  });

  it("init then deploy: the program's own package is in place, the commit is built and deployed", async () => {
    expect(JSON.parse(readFileSync(path.join(k.dir, ".kamal/pulumi/package.json"), "utf8")).dependencies).toHaveProperty("pulumi-kamal");
    const r = await cli(["deploy"]);
    expect(r.code, out(r)).toBe(0);
    const head = app.git("rev-parse", "HEAD");
    expect(r.stdout.split("\n")[0]).toBe(`Deploying version ${head} (stack production, config version)`);
    expect(r.stdout).toMatch(new RegExp(`  local builder: pushed \\S+/kp/kpk2:${head} sha256:[0-9a-f]{64}`));
    for (const h of web) expect(await version(h, HOST)).toBe("k-one");
    expect(readFileSync(path.join(k.dir, "pre-build.log"), "utf8")).toBe(`${head}\n`);
    // run_directory: as Kamal lays it out there, nothing in ~/.kamal.
    for (const h of web) {
      expect(await sh(h, `cat ${RUN_DIR}/kpk2-audit.log`)).toContain(`Started app version ${head}`);
      expect(await sh(h, `docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}' traefik`)).toContain(`${RUN_DIR}/proxy/traefik`);
      expect(await sh(h, `ls ${RUN_DIR}/proxy/traefik`)).toContain("kpk2-web.yml");
      expect(await sh(h, "ls -A /root/.kamal 2>/dev/null | wc -l")).toBe("0");
    }
    const lock = await cli(["lock", "acquire", "-m", "maintenance window"]);
    expect(lock.code, out(lock)).toBe(0);
    for (const h of web) expect(await sh(h, `test -d ${RUN_DIR}/lock-kpk2 && echo held`)).toBe("held");
    expect((await cli(["lock", "release"])).code).toBe(0);
    for (const h of web) expect(await sh(h, `test -d ${RUN_DIR}/lock-kpk2 || echo gone`)).toBe("gone");
  });

  it("commit, then deploy: the new commit is built and swapped in under load, 0 failed; again, nothing is built", async () => {
    const head = app.commit("k-two");
    const { result, failed, total } = await underLoad(() => cli(["deploy"]), HOST);
    expect(result.code, out(result)).toBe(0);
    expect(failed).toBe(0);
    expect(total).toBeGreaterThan(200);
    expect(result.stdout.split("\n")[0]).toBe(`Deploying version ${head} (stack production, config version)`);
    for (const h of web) expect(await version(h, HOST)).toBe("k-two");
    const again = await cli(["deploy"]);
    expect(again.code, out(again)).toBe(0);
    expect(again.stdout).not.toMatch(/building|pulling/);
    expect(again.stdout).not.toMatch(/updated/);
  });

  it("rollback builds and pulls nothing; the next deploy goes back to the commit without a build", async () => {
    const [previous] = app.git("log", "--format=%H", "-n", "2", "HEAD").split("\n").slice(1);
    const back = await underLoad(() => cli(["rollback", previous]), HOST);
    expect(back.result.code, out(back.result)).toBe(0);
    expect(back.failed).toBe(0);
    expect(back.result.stdout).not.toMatch(/building|pulling/);
    for (const h of web) expect(await version(h, HOST)).toBe("k-one");
    const forward = await cli(["deploy"]);
    expect(forward.code, out(forward)).toBe(0);
    expect(forward.stdout).not.toMatch(/building|pulling/);
    for (const h of web) expect(await version(h, HOST)).toBe("k-two");
  });

  it("build push builds and pushes the commit without deploying it; the deploy then builds nothing", async () => {
    const head = app.commit("k-pushed");
    const push = await cli(["build", "push"]);
    expect(push.code, out(push)).toBe(0);
    expect(push.stdout.split("\n")[0]).toBe(`Building version ${head} (stack production, config version)`);
    expect(push.stdout).toMatch(new RegExp(`  local builder: pushed \\S+/kp/kpk2:${head} sha256:[0-9a-f]{64}`));
    expect(push.stdout).not.toMatch(/is serving/);
    for (const h of web) expect(await version(h, HOST)).toBe("k-two");
    const deploy = await cli(["deploy"]);
    expect(deploy.code, out(deploy)).toBe(0);
    expect(deploy.stdout).not.toMatch(/building/);
    for (const h of web) expect(await version(h, HOST)).toBe("k-pushed");
  });

  it("redeploy builds the new commit too, and moves the apps only", async () => {
    const head = app.commit("k-redeployed");
    const r = await cli(["redeploy"]);
    expect(r.code, out(r)).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(`Redeploying version ${head} (stack production, config version)`);
    expect(r.stdout).toMatch(new RegExp(`  local builder: pushed \\S+/kp/kpk2:${head} sha256:[0-9a-f]{64}`));
    expect(r.stdout).not.toMatch(/Traefik replaced|bridge Traefik/);
    for (const h of web) expect(await version(h, HOST)).toBe("k-redeployed");
  });

  it("build details, build pull; --skip-push deploys the registry's image of the version without building", async () => {
    const details = await cli(["build", "details"]);
    expect(details.code, out(details)).toBe(0);
    expect(details.stdout.split("\n").slice(0, 2)).toEqual([
      "Builder: local (docker driver, the engine's own BuildKit)",
      expect.stringMatching(new RegExp(`^Image: \\S+/kp/kpk2:${app.git("rev-parse", "HEAD")} sha256:[0-9a-f]{64} built \\S+$`)),
    ]);
    const pull = await cli(["build", "pull"]);
    expect(pull.code, out(pull)).toBe(0);
    for (const h of web) expect(pull.stdout).toContain(`  ${host(h).address}: already had it`);
    app.commit("k-three");
    const skipped = await cli(["deploy", "--skip-push", "--version", "no-such-version"]);
    expect(skipped.code).toBe(1);
    expect(skipped.stdout).not.toMatch(/building/);
    expect(skipped.stderr).toMatch(/: pulling \S+:no-such-version: command failed/);
    for (const h of web) expect(await version(h, HOST)).toBe("k-redeployed");
  });

  it("build create/remove: nothing for the docker driver; build dev builds the working directory as it is, tagged -dirty", async () => {
    const create = await cli(["build", "create"]);
    expect(create.code, out(create)).toBe(0);
    expect(create.stdout).toBe("Builder: the engine's own BuildKit (docker driver): nothing to create\n");
    const remove = await cli(["build", "remove"]);
    expect(remove.code, out(remove)).toBe(0);
    expect(remove.stdout).toBe("Builder: the engine's own BuildKit (docker driver): nothing to remove\n");
    expect(await cli(["build", "pull", "--no-cache"])).toMatchObject({ code: 2, stderr: expect.stringContaining("build pull: --output and --no-cache are build dev's") });
    // An uncommitted Dockerfile change, an untracked file the builder sees, one it ignores.
    writeFileSync(path.join(app.dir, "Dockerfile"), dockerfile("k-dev", createHash("sha256").update(SECRET).digest("hex")));
    writeFileSync(path.join(app.dir, "rootfs/public/assets/dev.txt"), "dev\n");
    mkdirSync(path.join(app.dir, "notes"), { recursive: true });
    writeFileSync(path.join(app.dir, "notes/todo.txt"), "ignored by .dockerignore\n");
    try {
      const dev = await cli(["build", "dev", "--no-cache"]);
      expect(dev.code, out(dev)).toBe(0);
      expect(dev.stdout).toContain("WARNING: Files with uncommitted changes will be present in the dev container:\n  Dockerfile\n\n");
      expect(dev.stdout).toMatch(/WARNING: Untracked files will be present in the dev container:\n(  \S+\n)*  rootfs\/public\/assets\/dev\.txt\n/);
      expect(dev.stdout).not.toContain("notes/todo.txt");
      const head = app.git("rev-parse", "HEAD");
      const built = new RegExp(`^Built (\\S+/kp/kpk2:${head}_uncommitted_[0-9a-f]{16}-dirty)$`, "m").exec(dev.stdout);
      expect(built, out(dev)).not.toBeNull();
      // In the deploying machine's engine, with the working directory's content and the
      // build secret; Kamal's latest tag, dirty too. No host changed.
      const docker = (...args: string[]) => execFileSync("docker", args, { env: { ...process.env, DOCKER_HOST: sb.deployer.dockerHost }, encoding: "utf8" }).trim();
      expect(docker("image", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}{{.Config.Labels.service}}", built![1])).toContain("APP_VERSION=k-dev\nkpk2");
      expect(docker("image", "inspect", "--format", "{{.Id}}", built![1].replace(/:[^:]+$/, ":latest-dirty"))).toBe(docker("image", "inspect", "--format", "{{.Id}}", built![1]));
      const c = docker("create", built![1]);
      try {
        expect(execFileSync("docker", ["cp", `${c}:/public/assets/secret-check.txt`, "-"], { env: { ...process.env, DOCKER_HOST: sb.deployer.dockerHost }, encoding: "utf8" })).toContain("ok");
      } finally {
        docker("rm", c);
      }
      for (const h of web) expect(await version(h, HOST)).toBe("k-redeployed");
    } finally {
      app.git("checkout", "--", "Dockerfile");
      rmSync(path.join(app.dir, "rootfs/public/assets/dev.txt"));
      rmSync(path.join(app.dir, "notes"), { recursive: true });
    }
  });
});

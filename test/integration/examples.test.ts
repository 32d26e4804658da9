/**
 * Every example runs against the sandbox with the real engine, and the Kamal example makes
 * the same containers as the same deployment written with the components.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { httpGet } from "../../testbed/http";
import { PulumiProject, scratchProject } from "../../testbed/pulumi";
import { host, repoRoot, onHost, target } from "../../testbed/sandbox";
import { demoHints } from "../../scripts/demoHints";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { configure } = require("../../scripts/sandbox-config.js") as {
  configure: (dir: string, stack: string, version?: string, env?: NodeJS.ProcessEnv) => void;
};

const pool = new SshPool();
afterAll(() => pool.closeAll());

const STACK = "test";
const projects: PulumiProject[] = [];

/** An example, run in place on its own "test" stack (state and stack config are
 * gitignored), removed again afterwards. */
function example(name: string): Promise<PulumiProject> {
  return projectAt(path.join(repoRoot, "examples", name));
}

async function projectAt(dir: string): Promise<PulumiProject> {
  // The examples name their own (project-local) file backend in Pulumi.yaml.
  const p = new PulumiProject(dir, STACK, { projectBackend: true });
  rmSync(path.join(dir, `Pulumi.${STACK}.yaml`), { force: true });
  await p.run(["stack", "rm", "--yes", "--force", STACK]);
  configure(dir, STACK, "v1", p.env);
  projects.push(p);
  return p;
}

afterAll(async () => {
  for (const p of projects.reverse()) {
    await p.destroy();
    await p.run(["stack", "rm", "--yes", "--force", STACK]);
    rmSync(path.join(p.dir, `Pulumi.${STACK}.yaml`), { force: true });
  }
});

async function cleanHosts() {
  for (const h of ["app1", "app2", "db1"]) {
    const conn = await pool.connect(target(h));
    // Every network named kamal goes too (by ID: an earlier race could have made two).
    await conn.exec(
      onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; docker network ls -q --filter name=kamal | xargs -r docker network rm >/dev/null 2>&1; rm -rf /root/.kamal /root/hello-store /root/hello-* /root/hello2-*; true"),
    );
  }
}

interface ContainerSpec {
  host: string;
  name: string;
  image: string;
  cmd: string[] | null;
  env: string[];
  labels: Record<string, string>;
  binds: string[];
  ports: unknown;
  health: string[] | null;
  restart: string;
  log: unknown;
}

/** What docker says about every container on the hosts, minus what differs per run. */
async function containerSpecs(): Promise<ContainerSpec[]> {
  const specs: ContainerSpec[] = [];
  for (const h of ["app1", "app2", "db1"]) {
    const conn = await pool.connect(target(h));
    const names = (await conn.exec(onHost("docker ps --format '{{.Names}}'"))).stdout.split("\n").filter(Boolean);
    if (!names.length) continue;
    const inspected = JSON.parse((await conn.exec(onHost(`docker inspect ${names.join(" ")}`))).stdout);
    for (const c of inspected) {
      specs.push({
        host: h,
        name: c.Name.replace(/^\//, ""),
        image: c.Config.Image,
        cmd: c.Config.Cmd,
        env: [...(c.Config.Env ?? [])].sort(),
        labels: c.Config.Labels,
        binds: (c.HostConfig.Binds ?? []).map((b: string) => b.replace(/-[0-9a-f]{8}:/, "-<cord>:")).sort(),
        ports: c.HostConfig.PortBindings,
        health: c.Config.Healthcheck?.Test ?? null,
        restart: c.HostConfig.RestartPolicy.Name,
        log: c.HostConfig.LogConfig,
      });
    }
  }
  return specs.sort((a, b) => `${a.host}/${a.name}`.localeCompare(`${b.host}/${b.name}`));
}

beforeAll(cleanHosts);

describe("examples on the sandbox", () => {
  it("basic: one web app behind Traefik; preview shows the version change", async () => {
    const p = await example("basic");
    const up = await p.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const v = JSON.parse((await httpGet(`http://${host("app1").address}/version`)).body);
    expect(v).toEqual({ container: "hello-web-v1", version: "v1" });
    await p.run(["config", "set", "--stack", p.stack, "version", "v2"]);
    const preview = await p.preview();
    expect(preview.code).toBe(0);
    expect(preview.stdout).toMatch(/AppContainer::hello-web-10\.213\.0\.11\][\s\S]*~ version *: "v1" => "v2"/);
    expect(preview.stdout).toMatch(/~ 1 to update/);
    expect((await p.destroy()).code).toBe(0);
  });

  it("the repository root is the demo's project: after a deploy there, the demo's closing hints work as typed in a new shell", async () => {
    const stack = "newcomer";
    const p = new PulumiProject(repoRoot, stack, { projectBackend: true });
    await p.run(["stack", "rm", "--yes", "--force", stack]);
    rmSync(path.join(repoRoot, `examples/basic/Pulumi.${stack}.yaml`), { force: true });
    try {
      configure(repoRoot, stack, "v1", p.env);
      expect(existsSync(path.join(repoRoot, `examples/basic/Pulumi.${stack}.yaml`))).toBe(true);
      for (const v of ["v1", "v2"]) {
        expect((await p.run(["config", "set", "--stack", stack, "version", v])).code).toBe(0);
        const up = await p.up();
        expect(up.code, up.stdout + up.stderr).toBe(0);
      }
      // A new shell: nothing of the test's environment, only the system's PATH.
      const hints = demoHints(repoRoot, stack, p.env.PULUMI_CONFIG_PASSPHRASE!);
      const typed = hints.filter((h) => !/ logs -f | destroy /.test(h)).map((h) => h.replace(/\s+#.*$/, ""));
      const shell = spawnSync("bash", ["-c", typed.map((h) => `echo "$ ${h.replace(/"/g, '\\"')}"; ${h} || exit $?`).join("\n")], {
        env: { HOME: process.env.HOME!, PATH: "/usr/local/bin:/usr/bin:/bin", TERM: "dumb" },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      const said = shell.stdout + shell.stderr;
      expect(shell.status, said).toBe(0);
      expect(said).toMatch(/\$ pulumi stack history --stack newcomer\n[\s\S]*UpdateKind: update/);
      expect(said).toMatch(/hello\s+web\s+10\.213\.0\.11 \(10\.213\.0\.11\)\s+v2\s+hello-web-v2\s+running\s+healthy/);
      expect(said).toContain("Rolling back to version v1 (stack newcomer, config version)");
      expect(said).not.toMatch(/pulling/);
      expect(said).toMatch(/\$ pulumi preview --stack newcomer\n[\s\S]*\d+ unchanged/);
      expect(said).not.toMatch(/Unknown (env|user) config/);
      expect(JSON.parse((await httpGet(`http://${host("app1").address}/version`)).body).version).toBe("v1");
      // The last hint, with the answer the prompt would get.
      const destroy = hints.find((h) => / destroy /.test(h))!;
      const down = spawnSync("bash", ["-c", `export PULUMI_CONFIG_PASSPHRASE=${p.env.PULUMI_CONFIG_PASSPHRASE}; cd ${repoRoot}; ${destroy} --yes`], { env: { HOME: process.env.HOME!, PATH: "/usr/local/bin:/usr/bin:/bin" }, encoding: "utf8" });
      expect(down.status, down.stdout + down.stderr).toBe(0);
    } finally {
      await p.destroy();
      await p.run(["stack", "rm", "--yes", "--force", stack]);
      rmSync(path.join(repoRoot, `examples/basic/Pulumi.${stack}.yaml`), { force: true });
    }
  });

  it("full: web on two hosts, a worker, an accessory, secrets, Traefik args", async () => {
    const p = await example("full");
    const up = await p.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    for (const h of ["app1", "app2"]) {
      const v = JSON.parse((await httpGet(`http://${host(h).address}/version`)).body);
      expect(v).toEqual({ container: "hello-web-v1", version: "v1", env: { API_TOKEN: "sandbox-api-token" } });
    }
    const app2 = await pool.connect(target("app2"));
    expect((await app2.exec(onHost("docker ps --format '{{.Names}}'"))).stdout).toMatch(/^hello-workers-v1$/m);
    const traefikArgs = (await app2.exec(onHost("docker inspect traefik --format '{{json .Args}}'"))).stdout;
    expect(JSON.parse(traefikArgs)).toEqual(expect.arrayContaining(["--accesslog", "--accesslog.format=json", "--log.level=WARN"]));
    await fetch(`http://${host("db1").address}:9000/kv/k`, { method: "PUT", body: "stored" });
    expect((await httpGet(`http://${host("app1").address}/upstream?path=/kv/k`)).body).toBe("stored");
    expect((await p.destroy()).code).toBe(0);
  });

  it("kamal: deploy.yml deploys the same containers, labels and env as the components", async () => {
    const viaKamal = await example("kamal");
    const up = await viaKamal.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    // deploy.yml's builder is read now (KamalApp builds with it when asked), not warned about.
    expect(up.stdout).not.toContain("builder: not used");
    const fromKamal = await containerSpecs();
    expect((await viaKamal.destroy()).code).toBe(0);
    await cleanHosts();

    const viaComponents = await projectAt(
      scratchProject("kamal-equivalent", {
        // Same project name: the same sandbox config and secrets as the example.
        "Pulumi.yaml": "name: kamal-from-deploy-yml\nruntime: nodejs\nbackend:\n  url: file://./.pulumi-state\n",
        "package.json": JSON.stringify({ name: "kamal-equivalent", main: "index.ts" }),
        "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/kamal-equivalent"))};\n`,
      }),
    );
    const up2 = await viaComponents.up();
    expect(up2.code, up2.stdout + up2.stderr).toBe(0);
    const fromComponents = await containerSpecs();
    expect((await viaComponents.destroy()).code).toBe(0);

    expect(fromKamal.map((c) => `${c.host}/${c.name}`)).toEqual([
      "app1/hello-web-v1", "app1/traefik", "app2/hello-web-v1", "app2/hello-workers-v1", "app2/traefik", "db1/hello-store",
    ]);
    expect(fromKamal.find((c) => c.host === "app2" && c.name === "hello-web-v1")!.env).toContain("CANARY=true");
    expect(fromKamal.find((c) => c.host === "app1" && c.name === "hello-web-v1")!.env).not.toContain("CANARY=true");
    expect(fromComponents).toEqual(fromKamal);
  });

  it("kamal: the project's hooks run in Kamal's order with Kamal's env, once per deploy; a failing pre-deploy stops it before any host changes", async () => {
    const log = path.join(repoRoot, "test/.work/kamal-hooks.log");
    rmSync(log, { force: true });
    process.env.KAMAL_EXAMPLE_HOOKS_LOG = log;
    const lines = () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : []);
    const names = (from = 0) => lines().slice(from).map((l) => l.split(" ")[0]);
    const running = async () => (await (await pool.connect(target("app1"))).exec(onHost("docker ps --format '{{.Names}}' | sort"))).stdout.trim();
    try {
      const p = await example("kamal");
      const up = await p.up();
      expect(up.code, up.stdout + up.stderr).toBe(0);
      expect(names()).toEqual(["pre-connect", "pre-deploy", "pre-app-boot", "post-app-boot", "post-deploy"]);
      const all = "10.213.0.11,10.213.0.12,10.213.0.13";
      const apps = "10.213.0.11,10.213.0.12";
      const [connect, deploy, appBoot, , post] = lines();
      expect(connect).toMatch(new RegExp(`^pre-connect version=v1 service_version=hello@v1 service=hello hosts=${all} command=deploy lock=false performer=set recorded_at=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ runtime=- cwd=kamal$`));
      expect(deploy).toContain(`pre-deploy version=v1 service_version=hello@v1 service=hello hosts=${all} command=deploy lock=true`);
      expect(appBoot).toContain(`pre-app-boot version=v1 service_version=hello@v1 service=hello hosts=${apps} command=deploy lock=true`);
      expect(post).toMatch(new RegExp(`^post-deploy version=v1 .* hosts=${all} command=deploy lock=false performer=set recorded_at=\\S+ runtime=\\d+ cwd=kamal$`));
      // A hook runs after what it follows: post-app-boot once the app serves.
      // (The first time each line shows: the summary at the end repeats them.)
      const servedAt = ["10.213.0.11: hello-web-v1 is serving", "10.213.0.12: hello-web-v1 is serving", "10.213.0.12: hello-workers-v1 is serving"].map((l) => up.stdout.indexOf(l));
      expect(Math.min(...servedAt)).toBeGreaterThan(up.stdout.indexOf("local: pre-app-boot hook done"));
      expect(up.stdout.indexOf("local: running the post-app-boot hook")).toBeGreaterThan(Math.max(...servedAt));

      const again = await p.up();
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(lines()).toHaveLength(5);

      const before = await running();
      await p.run(["config", "set", "--stack", p.stack, "version", "v2"]);
      process.env.KAMAL_EXAMPLE_FAIL_HOOK = "pre-deploy";
      const failed = await p.up();
      expect(failed.code, failed.stdout + failed.stderr).not.toBe(0);
      expect(failed.stdout + failed.stderr).toContain("local: running the pre-deploy hook: it failed with exit code 1; nothing was deployed after it");
      expect(failed.stdout + failed.stderr).toContain("pre-deploy: refusing to deploy v2 (KAMAL_EXAMPLE_FAIL_HOOK)");
      expect(names(5)).toEqual(["pre-connect", "pre-deploy"]);
      expect(await running()).toBe(before);

      delete process.env.KAMAL_EXAMPLE_FAIL_HOOK;
      const up2 = await p.up();
      expect(up2.code, up2.stdout + up2.stderr).toBe(0);
      // pre-connect already ran for this deploy; the rest run now, in order.
      expect(names(7)).toEqual(["pre-deploy", "pre-app-boot", "post-app-boot", "post-deploy"]);
      expect(lines()[7]).toContain("version=v2 service_version=hello@v2");
      expect(await running()).toContain("hello-web-v2");
      expect((await p.destroy()).code).toBe(0);
    } finally {
      delete process.env.KAMAL_EXAMPLE_HOOKS_LOG;
      delete process.env.KAMAL_EXAMPLE_FAIL_HOOK;
    }
  });

  it("kamal2: a Kamal 2 deploy.yml; the app reaches its accessory by name on the kamal network; a curl-less image probed from outside; secrets from .kamal/secrets", async () => {
    await cleanHosts();
    const p = await example("kamal2");
    const up = await p.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).not.toContain("not applied");
    const name = "hello2.example.test";
    for (const h of ["app1", "app2"]) {
      // API_TOKEN came from `$(printf …)` in .kamal/secrets; the route matches the host name only.
      expect(JSON.parse((await httpGet(`http://${host(h).address}/version`, { host: name })).body)).toEqual({
        container: "hello2-web-v1",
        version: "v1",
        env: { API_TOKEN: "sandbox-api-token" },
      });
      expect((await httpGet(`http://${host(h).address}/version`)).status).toBe(404);
      const conn = await pool.connect(target(h));
      await conn.exec(onHost(`printf %s stored-on-${h} > /root/hello2-store/data/k`));
      expect((await httpGet(`http://${host(h).address}/upstream?path=/kv/k`, { host: name })).body).toBe(`stored-on-${h}`);
      const onNetwork = (await conn.exec(onHost("docker network inspect kamal --format '{{range .Containers}}{{.Name}} {{end}}'"))).stdout.trim().split(" ").sort();
      expect(onNetwork).toEqual(["hello2-store", "hello2-web-v1", "traefik"]);
      // No Docker health command: the swap probed /up through the SSH connection.
      expect((await conn.exec(onHost("docker inspect hello2-web-v1 --format '{{json .Config.Healthcheck}}'"))).stdout.trim()).toBe("null");
    }
    const view = JSON.parse((await p.run(["stack", "output", "kamalConfig", "--json", "--stack", p.stack])).stdout);
    expect(view).toMatchObject({ roles: ["web"], primary_host: "10.213.0.11", absolute_image: "10.213.0.2:5000/kp/testapp:v1", kamal_version: 2 });
    const again = await p.preview(["--expect-no-changes"]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    await p.run(["config", "set", "--stack", p.stack, "version", "v2"]);
    const swap = await p.up();
    expect(swap.code, swap.stdout + swap.stderr).toBe(0);
    expect(JSON.parse((await httpGet(`http://${host("app1").address}/version`, { host: name })).body).container).toBe("hello2-web-v2");
    expect((await p.destroy()).code).toBe(0);
  });

  it("composition: the infra stack owns the hosts and Traefik; two app stacks share it by host name", async () => {
    await cleanHosts();
    const infra = await example("composition/infra");
    const infraUp = await infra.up();
    expect(infraUp.code, infraUp.stdout + infraUp.stderr).toBe(0);
    const app = await example("composition/app");
    const up = await app.up();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toMatch(/AppContainer composed-web-web-1 created/);
    // A second app stack of the same project: another service, its own host name.
    const second = new PulumiProject(app.dir, "second", { projectBackend: true });
    await second.run(["stack", "rm", "--yes", "--force", "second"]);
    configure(app.dir, "second", "v1", second.env);
    for (const [k, v] of [["infraStack", "organization/kamal-infra/test"], ["service", "blog"], ["routeHost", "blog.example.test"]]) {
      expect((await second.run(["config", "set", "--stack", "second", k, v])).code).toBe(0);
    }
    const upSecond = await second.up();
    expect(upSecond.code, upSecond.stdout + upSecond.stderr).toBe(0);
    for (const h of ["app1", "app2"]) {
      expect(JSON.parse((await httpGet(`http://${host(h).address}/version`, { host: "composed.example.test" })).body).container).toBe("composed-web-v1");
      expect(JSON.parse((await httpGet(`http://${host(h).address}/version`, { host: "blog.example.test" })).body).container).toBe("blog-web-v1");
    }
    expect((await second.destroy()).code).toBe(0);
    await second.run(["stack", "rm", "--yes", "--force", "second"]);
    rmSync(path.join(app.dir, "Pulumi.second.yaml"), { force: true });
    for (const h of ["app1", "app2"]) {
      expect(JSON.parse((await httpGet(`http://${host(h).address}/version`, { host: "composed.example.test" })).body).container).toBe("composed-web-v1");
    }
    expect((await app.destroy()).code).toBe(0);
    expect((await infra.destroy()).code).toBe(0);
  });
});

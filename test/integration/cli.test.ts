/**
 * `pulumi-kamal` on a deployed stack, against the sandbox with the real Pulumi engine: each
 * command's output asserted (details, logs from both hosts with their prefixes, exec with
 * the role's env and secret visible to the app only, audit lines after a deploy and a
 * rollback, the lock refusing while held), and `exec -i` and `logs -f` in a real terminal
 * (tmux, reading its screen). Runs in lane three, after release.test.ts (testbed/lane.ts).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, out, runCli } from "../helpers/cli";
import { SshPool } from "../../provider/ssh/pool";
import { httpGet } from "../../testbed/http";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { startLoad } from "../../testbed/load";
import { host, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
const SECRET = "ops-secret-7f3a91c2";
let p: PulumiProject;

async function set(key: string, value: string, secret = false) {
  const r = await p.run(["config", "set", secret ? "--secret" : "--plaintext", "--stack", p.stack, key, value]);
  expect(r.code, r.stderr).toBe(0);
}

async function sh(h: string, command: string): Promise<string> {
  return (await (await pool.connect(target(h))).exec(onHost(command))).stdout.trim();
}

afterAll(() => pool.closeAll());

/** Runs the CLI as a user would, in the project's directory. */
function cli(args: string[], project: { dir: string; env: NodeJS.ProcessEnv } = p): Promise<PulumiRun> {
  return runCli(args, project);
}

/** A command in a tmux terminal; its screen is read as the user would see it. */
class Terminal {
  constructor(
    readonly name: string,
    private readonly statusFile = "",
  ) {}
  static start(name: string, args: string[]): Terminal {
    const script = path.join(p.dir, `${name}.sh`);
    const env = Object.entries(p.env).filter(([k]) => /^(PATH|HOME|PULUMI_[A-Z_]+|NODE_OPTIONS)$/.test(k));
    const status = path.join(p.dir, `${name}.status`);
    rmSync(status, { force: true });
    writeFileSync(script, [...env.map(([k, v]) => `export ${k}=${JSON.stringify(v)}`), `cd ${JSON.stringify(p.dir)}`, `${[process.execPath, CLI, ...args].map((a) => JSON.stringify(a)).join(" ")}`, `echo $? > ${JSON.stringify(status)}`, "sleep 600", ""].join("\n"));
    // The previous test's session was the tmux server's last: a server still exiting refuses
    // the new session ("server exited unexpectedly"); a new server is started on the retry.
    for (let attempt = 1; ; attempt++) {
      try {
        execFileSync("tmux", ["new-session", "-d", "-s", name, "-x", "160", "-y", "40", `bash ${script}`], { stdio: "pipe" });
        break;
      } catch (e) {
        if (attempt >= 5 || !/server exited unexpectedly/.test(String((e as { stderr?: Buffer }).stderr ?? ""))) throw e;
        execFileSync("sleep", ["0.3"]);
      }
    }
    return new Terminal(name, status);
  }
  screen(): string {
    return execFileSync("tmux", ["capture-pane", "-p", "-t", this.name], { encoding: "utf8" });
  }
  keys(...keys: string[]): void {
    execFileSync("tmux", ["send-keys", "-t", this.name, ...keys]);
  }
  /** The exit status once the command ended, else undefined. */
  exitStatus(): number | undefined {
    return existsSync(this.statusFile) && readFileSync(this.statusFile, "utf8").trim() ? Number(readFileSync(this.statusFile, "utf8").trim()) : undefined;
  }
  /** The exit status, once the command ended within `ms` (else undefined). */
  async exited(ms: number): Promise<number | undefined> {
    const t0 = Date.now();
    while (this.exitStatus() === undefined && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 200));
    return this.exitStatus();
  }
  async waitFor(test: (screen: string) => boolean, what: string, ms = 30_000): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const s = this.screen();
      if (test(s)) return s;
      if (Date.now() - t0 > ms) throw new Error(`terminal ${this.name}: no ${what} within ${ms}ms; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  kill(): void {
    try {
      execFileSync("tmux", ["kill-session", "-t", this.name]);
    } catch {
      /* already gone */
    }
  }
}

describe("pulumi-kamal", () => {
  beforeAll(async () => {
    for (const h of ["app1", "app2"]) await sh(h, "docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
    const dir = scratchProject("cli", {
      "Pulumi.yaml": "name: kp-cli\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-cli", main: "index.ts" }),
      "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/cli"))};\n`,
    });
    p = new PulumiProject(dir, "test");
    await p.ensureStack();
    await set("opsSecret", SECRET, true);
    await set("version", "v1");
    const first = await p.up();
    expect(first.code, out(first)).toBe(0);
    await set("version", "v2");
    const second = await p.up();
    expect(second.code, out(second)).toBe(0);
  });

  afterAll(async () => {
    for (const t of ["kp-exec", "kp-logs"]) new Terminal(t).kill();
    await p?.destroy();
  });

  it("says how to use it, and refuses a bad command line before reading any stack (exit 2)", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    for (const c of ["init", "bootstrap", "setup", "deploy", "redeploy", "build", "rollback", "preview", "maintenance", "live", "details", "logs", "exec", "audit", "lock", "accessory", "app", "proxy", "server", "registry", "prune", "secrets", "state", "unlock"]) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, "m"));
    const logsHelp = await cli(["logs", "--help"]);
    expect(logsHelp.stdout).toContain("pulumi-kamal logs [ROLE|ACCESSORY|traefik] [--host H] [-f] [--since T] [-n N] [--grep RE]");
    expect(await cli(["deploi"])).toMatchObject({ code: 2, stderr: 'pulumi-kamal: no command "deploi" (commands: init, bootstrap, setup, deploy, redeploy, build, rollback, preview, maintenance, live, details, logs, exec, audit, lock, accessory, app, proxy, server, registry, prune, secrets, state, unlock); pulumi-kamal --help\n' });
    expect(await cli(["exec"])).toMatchObject({ code: 2, stderr: "pulumi-kamal exec: exec needs a command: pulumi-kamal exec -- bin/rails console\n" });
    expect((await cli(["logs", "--bogus"])).code).toBe(2);
    const noStack = await cli(["details", "--stack", "nope"]);
    expect(noStack.code).toBe(2);
    expect(noStack.stderr).toMatch(/^pulumi-kamal details: cannot read the state of stack nope in .*: .*nope.*\n$/);
    expect(noStack.stderr).not.toMatch(/\n\s+at /);
  });

  it("details: per role and host the version, container, status, health, uptime and digest; the accessory; Traefik", async () => {
    const r = await cli(["details"]);
    expect(r.code, out(r)).toBe(0);
    const rows = r.stdout.split("\n");
    for (const h of ["app1", "app2"]) {
      expect(rows.find((l) => l.startsWith("ops (staging)") && l.includes(`${h} (${host(h).address})`) && / web /.test(l))).toMatch(/ v2\s+ops-web-staging-v2\s+running\s+healthy\s+\d+[sm]( \d+s)?\s+0\s+[0-9a-f]{12}$/);
    }
    expect(rows.find((l) => / workers /.test(l))).toMatch(/ v2\s+ops-workers-staging-v2\s+running\s/);
    expect(r.stdout).toMatch(new RegExp(`\\nAccessories\\nNAME .*\\nstore\\s+app2 \\(${host("app2").address.replace(/\./g, "\\.")}\\)\\s+ops-store\\s+\\S+kp/testapp:v1\\s+running`));
    expect(r.stdout).toMatch(/\nTraefik\nHOST .*\napp1 .* traefik .* running/);
    const json = JSON.parse((await cli(["details", "--json"])).stdout);
    const web1 = json.containers.find((c: { role?: string; host: string }) => c.role === "web" && c.host === "app1");
    expect(web1).toMatchObject({ kind: "app", service: "ops", destination: "staging", container: "ops-web-staging-v2", version: "v2", stateVersion: "v2", status: "running", health: "healthy", restarts: 0 });
    expect(web1.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stdout + JSON.stringify(json)).not.toContain(SECRET);
  });

  it("logs: both hosts at once, each line prefixed with its host; --grep filters; an accessory by name", async () => {
    const r = await cli(["logs", "web", "--lines", "5"]);
    expect(r.code, out(r)).toBe(0);
    for (const h of ["app1", "app2"]) expect(r.stdout).toMatch(new RegExp(`^${h} \\| \\d{4}-\\d\\d-\\d\\dT\\S+ \\S+ testapp v2: listening on :80 as ops-web-staging-v2`, "m"));
    const grep = await cli(["logs", "web", "--grep", "healthy$"]);
    expect(grep.stdout.trim().split("\n").every((l) => /^app[12] \| .*testapp v2: healthy$/.test(l)), grep.stdout).toBe(true);
    const all = await cli(["logs", "--host", "app1", "--lines", "3"]);
    expect(all.stdout).toMatch(/^app1 web\s+\| /m);
    expect(all.stdout).toMatch(/^app1 workers \| /m);
    const store = await cli(["logs", "store"]);
    expect(store.stdout).toMatch(/^app2 store \| .*testapp v1: listening on :80/m);
    expect(await cli(["logs", "nosuch"])).toMatchObject({ code: 2, stderr: "pulumi-kamal logs: stack test has no role nosuch (roles: web, workers)\n" });
  });

  it("exec: a one-off container of the deployed version with the role's env and secret, shown only when the app prints it", async () => {
    const r = await cli(["exec", "--", "sh", "-c", 'echo "$KAMAL_VERSION $OPS_CLEAR $OPS_SECRET"']);
    expect(r.code, out(r)).toBe(0);
    expect(r.stdout.split("\n").sort().filter(Boolean)).toEqual([`app1 | v2 visible ${SECRET}`, `app2 | v2 visible ${SECRET}`]);
    // Kamal's --raw: each host's stdout as it is, no host in front.
    const raw = await cli(["exec", "--raw", "--", "sh", "-c", 'echo "$KAMAL_VERSION"']);
    expect(raw, out(raw)).toMatchObject({ code: 0, stdout: "v2\nv2\n" });
    // The command's own output and the command lines on the host carry no secret.
    const quiet = await cli(["exec", "--host", "app1", "--", "sh", "-c", 'test -n "$OPS_SECRET" && echo has-secret']);
    expect(quiet).toMatchObject({ code: 0, stdout: "has-secret\n", stderr: "" });
    // The exit code is the command's; the one-off containers are gone.
    expect((await cli(["exec", "--host", "app2", "--", "sh", "-c", "exit 7"])).code).toBe(7);
    expect(await sh("app1", "docker ps -a --filter label=kamal.exec --format '{{.Names}}'")).toBe("");
    // --reuse runs inside the serving container.
    const reuse = await cli(["exec", "--reuse", "--role", "web", "--host", "app2", "--", "sh", "-c", "echo $KAMAL_CONTAINER_NAME"]);
    expect(reuse).toMatchObject({ code: 0, stdout: "ops-web-staging-v2\n" });
    // Kamal's -e and one command line (split as a shell would), in a new container and a reused one.
    expect(await cli(["exec", "--host", "app1", "-e", "GREETING=hello there", "sh -c 'echo $GREETING'"])).toMatchObject({ code: 0, stdout: "hello there\n" });
    expect(await cli(["exec", "--reuse", "--role", "web", "--host", "app1", "-e", "X=1", "--", "sh", "-c", "echo x=$X"])).toMatchObject({ code: 0, stdout: "x=1\n" });
    // --detach: started in the background and kept.
    const detached = await cli(["exec", "--detach", "--host", "app2", "--", "sh", "-c", "sleep 30"]);
    expect(detached.code, out(detached)).toBe(0);
    expect(await sh("app2", "docker ps --filter label=kamal.exec --format '{{.Status}}'")).toMatch(/^Up /);
    await sh("app2", "docker ps -aq --filter label=kamal.exec | xargs -r docker rm -f >/dev/null");
  });

  it("exec -i: a console in a real terminal", async () => {
    const t = Terminal.start("kp-exec", ["exec", "-i", "--host", "app1", "--", "sh"]);
    try {
      await t.waitFor((s) => /[#$] ?$/m.test(s), "shell prompt");
      t.keys('echo "in $KAMAL_CONTAINER_NAME at $((6*7))"', "Enter");
      const screen = await t.waitFor((s) => /in ops-web-staging-exec-v2-[0-9a-f]{6} at 42/.test(s), "the command's answer");
      expect(screen).not.toContain(SECRET);
      t.keys("exit 5", "Enter");
      expect(await t.exited(20_000)).toBe(5);
    } finally {
      t.kill();
    }
  });

  it("logs -f: follows both hosts in a real terminal until Ctrl-C", async () => {
    const t = Terminal.start("kp-logs", ["logs", "web", "-f", "--lines", "1"]);
    try {
      await t.waitFor((s) => /^app1 \| /m.test(s) && /^app2 \| /m.test(s), "a line from each host");
      for (const h of ["app1", "app2"]) await httpGet(`http://${host(h).address}/log?line=hello-from-${h}`);
      await t.waitFor((s) => ["app1", "app2"].every((h) => new RegExp(`^${h} \\| \\S+ \\S+ testapp v2: log: hello-from-${h}$`, "m").test(s)), "the new lines");
      t.keys("C-c");
      expect(await t.exited(10_000)).toBe(0);
    } finally {
      t.kill();
    }
  });

  it("bootstrap on a deployed stack: its hosts from the state, already ready, nothing changed", async () => {
    const r = await cli(["bootstrap"]);
    expect(r.code, out(r)).toBe(0);
    const a1 = host("app1").address;
    const a2 = host("app2").address;
    expect(r.stdout.split("\n")[0]).toBe(`Bootstrapping app1, app2 (stack ${p.stack}, hosts from the state of stack ${p.stack})`);
    for (const h of ["app1", "app2"]) {
      expect(r.stdout).toContain(`\n${h} (root): ready, nothing to change\n`);
    }
    expect(r.stdout).toMatch(/^  = docker group +not needed \(root\)$/m);
    expect(r.stdout).not.toContain(a1);
    expect(r.stdout).not.toContain(a2);
  });

  it("lock: acquire holds every host; a second acquire and a deploy are refused naming the holder; release frees it", async () => {
    const taken = await cli(["lock", "acquire", "-m", "db maintenance"]);
    expect(taken.code, out(taken)).toBe(0);
    expect(taken.stdout).toBe("app1: acquired the deploy lock (.kamal/lock-ops-staging)\napp2: acquired the deploy lock (.kamal/lock-ops-staging)\n");
    const status = await cli(["lock", "status"]);
    expect(status.stdout).toMatch(/^app1: \.kamal\/lock-ops-staging\n {2}Locked by: \S+ at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n {2}Version: v2\n {2}Message: db maintenance$/m);
    const again = await cli(["lock", "acquire", "-m", "me too"]);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/^pulumi-kamal lock: the deploy lock is held, so none was taken: app[12]: \.kamal\/lock-ops-staging is held by \S+ since \S+ \(version v2, "db maintenance"\)/);
    await set("lockWait", "2");
    await set("version", "v1");
    const refused = await p.up();
    expect(refused.code).not.toBe(0);
    expect(out(refused)).toMatch(/the deploy lock \.kamal\/lock-ops-staging on app[12] is held by \S+ since \S+ \(version v2, "db maintenance"\)/);
    const released = await cli(["lock", "release"]);
    expect(released).toMatchObject({ code: 0, stdout: "app1: released the deploy lock\napp2: released the deploy lock\n" });
    expect((await cli(["lock", "status"])).stdout).toBe("app1: there is no deploy lock (.kamal/lock-ops-staging)\napp2: there is no deploy lock (.kamal/lock-ops-staging)\n");
  });

  it("audit: each host's lines for the deploy, the rollback, the execs and the lock, in Kamal's format", async () => {
    // The rollback the lock refused, now through.
    const back = await p.up();
    expect(back.code, out(back)).toBe(0);
    const r = await cli(["audit"]);
    expect(r.code, out(r)).toBe(0);
    const tag = String.raw`\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\] \[\S+\] \[staging\]`;
    for (const h of ["app1", "app2"]) {
      const mine = r.stdout.split("\n").filter((l) => l.startsWith(`${h} | `)).map((l) => l.slice(`${h} | `.length));
      expect(mine.some((l) => new RegExp(`^${tag} \\[web\\] Started app version v1$`).test(l)), mine.join("\n")).toBe(true);
      expect(mine.some((l) => new RegExp(`^${tag} \\[web\\] Started app version v2 \\(was v1\\)$`).test(l))).toBe(true);
      expect(mine.some((l) => new RegExp(`^${tag} \\[web\\] Rolled back app to version v1 \\(was v2\\)$`).test(l)), mine.join("\n")).toBe(true);
      expect(mine.some((l) => new RegExp(`^${tag} Acquired the deploy lock: db maintenance$`).test(l))).toBe(true);
      expect(mine.some((l) => new RegExp(`^${tag} Released the deploy lock$`).test(l))).toBe(true);
    }
    expect(r.stdout).toMatch(/^app1 \| .* \[web\] Executed cmd 'sh -c test -n "\$OPS_SECRET" && echo has-secret' on app version v2$/m);
    expect(r.stdout).not.toContain(SECRET);
    // The file is Kamal's: `kamal audit` reads the same lines.
    expect(await sh("app1", "grep -c 'Rolled back app to version v1 (was v2)' .kamal/ops-staging-audit.log")).toBe("2");
  });

  it("day-two commands as Kamal's: app version|containers|images|stop|start, accessory, proxy, server exec, registry", async () => {
    const lines = (r: PulumiRun) => r.stdout.split("\n").filter(Boolean).sort();
    // What the hosts run, as Docker says (the earlier tests roll back and forth).
    const v = await sh("app1", "docker ps --filter label=service=ops --filter label=role=web --format '{{.Label \"version\"}}'");
    const web = `ops-web-staging-${v}`;
    const version = await cli(["app", "version", "--role", "web"]);
    expect(version.code, out(version)).toBe(0);
    expect(lines(version)).toEqual([`app1: ${v}`, `app2: ${v}`]);
    // Kamal's -r and -h, a pattern each.
    const byPattern = await cli(["app", "version", "-r", "w?b", "-h", "app[12]"]);
    expect(lines(byPattern)).toEqual([`app1: ${v}`, `app2: ${v}`]);
    const containers = await cli(["app", "containers", "--role", "web", "--host", "app1"]);
    expect(containers.stdout).toMatch(/^app1 \| CONTAINER ID +IMAGE/m);
    expect(containers.stdout).toMatch(new RegExp(`^app1 \\| .*${web}$`, "m"));
    const images = await cli(["app", "images", "--host", "app2"]);
    expect(images.stdout).toMatch(/^app2 \| REPOSITORY +TAG/m);
    const url = `http://${host("app1").address}/version`;
    const stop = await cli(["app", "stop", "--role", "web", "--host", "app1"]);
    expect([stop.code, stop.stdout]).toEqual([0, `app1: stopped ${web}\n`]);
    expect(await sh("app1", `docker inspect -f '{{.State.Status}}' ${web}`)).toBe("exited");
    const start = await cli(["app", "start", "--role", "web", "--host", "app1"]);
    expect([start.code, start.stdout]).toEqual([0, `app1: started ${web}\n`]);
    expect(await sh("app1", `docker inspect -f '{{.State.Status}}' ${web}`)).toBe("running");
    const before = await sh("app2", "docker inspect -f '{{.State.StartedAt}}' ops-store");
    const restart = await cli(["accessory", "restart", "store"]);
    expect([restart.code, restart.stdout]).toEqual([0, "app2: restarted ops-store\n"]);
    expect(await sh("app2", "docker inspect -f '{{.State.StartedAt}}' ops-store")).not.toBe(before);
    expect((await cli(["accessory", "details", "store"])).stdout).toMatch(/^app2 \| .* ops-store$/m);
    expect((await cli(["accessory", "exec", "store", "--", "/app", "probe", "http://127.0.0.1:80/up"])).code).toBe(0);
    const failing = await cli(["accessory", "exec", "store", "--", "/app", "probe", "http://127.0.0.1:1/"]);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/^error: app2: running \/app in store: probe: .*connection refused\n$/);
    const proxy = await cli(["proxy", "details"]);
    expect(lines(proxy).map((l) => l.replace(/ since .*/, ""))).toEqual([`app1: traefik ${sandbox().images.traefik} running`, `app2: traefik ${sandbox().images.traefik} running`]);
    const exec = await cli(["server", "exec", "--", "echo kamal-was-here $((1 + 1))"]);
    expect(exec.code, out(exec)).toBe(0);
    expect(lines(exec)).toEqual(["app1 | kamal-was-here 2", "app2 | kamal-was-here 2"]);
    expect(await cli(["server", "exec", "--raw", "--host", "app1", "--", "echo raw-out"])).toMatchObject({ code: 0, stdout: "raw-out\n" });
    const logout = await cli(["registry", "logout"]);
    expect(lines(logout)).toEqual([`app1: logged out of ${sandbox().registry.address}`, `app2: logged out of ${sandbox().registry.address}`]);
    const login = await cli(["registry", "login", "--host", "app1"]);
    expect([login.code, login.stdout]).toEqual([0, `app1: logged in to ${sandbox().registry.address}\n`]);
    expect(login.stdout + login.stderr).not.toContain(sandbox().registry.password);
    expect((await httpGet(url)).status).toBe(200);
  });

  it("prune: stopped containers beyond the versions kept, and unused images, under the deploy lock; audited as Kamal's", async () => {
    const lines = (r: PulumiRun) => r.stdout.split("\n").filter(Boolean).sort();
    const stoppedWeb = async (h: string) =>
      (await sh(h, "docker ps -a --filter label=service=ops --filter label=role=web --filter status=exited --format '{{.Names}}'")).split("\n").filter((n) => n && !n.includes("_failed_"));
    const pruned = await cli(["prune", "containers", "--retain", "1", "--role", "web"]);
    expect(pruned.code, out(pruned)).toBe(0);
    for (const l of lines(pruned)) expect(l).toMatch(/^app[12]: (removed ops-web-staging-\S+(, ops-web-staging-\S+)*|no web container to remove) \(1 earlier version kept\)$/);
    for (const h of ["app1", "app2"]) expect((await stoppedWeb(h)).length).toBeLessThanOrEqual(1);
    expect(await sh("app1", "tail -n 1 .kamal/ops-staging-audit.log")).toMatch(/\] \[staging\] \[web\] Pruned containers$/);
    const images = await cli(["prune", "images"]);
    expect(images.code, out(images)).toBe(0);
    // Every image of the service left is one a container uses.
    const inUse = new Set((await sh("app1", "docker ps -a --format '{{.Image}}'")).split("\n"));
    const left = (await sh("app1", `docker images --format '{{.Repository}}:{{.Tag}}' ${sandbox().images.app.v1.split(":")[0]}`)).split("\n").filter(Boolean);
    expect(left.filter((i) => !inUse.has(i))).toEqual([]);
    expect((await cli(["prune", "containers", "--retain", "0"])).stderr).toBe("pulumi-kamal prune: --retain must be at least 1 (the last version that served is what a rollback needs)\n");
    expect((await httpGet(`http://${host("app1").address}/version`)).status).toBe(200);
  });
});

describe("pulumi-kamal init, deploy, rollback, maintenance: a Kamal project driven by its own commands", () => {
  let k: { dir: string; env: NodeJS.ProcessEnv };
  const sb = sandbox();
  const knownHostsPath = sb.hosts[0].knownHostsPath;
  const keyPath = sb.hosts[0].privateKeyPath;

  /** examples/kamal, copied as a user's Kamal project on this lane's hosts, registry and a
   * service name of its own; secrets in .env, as Kamal 1 reads them. */
  function kamalProject(name: string): string {
    const dir = mkdtempSync(path.join(repoRoot, `test/.work/${name}-`));
    cpSync(path.join(repoRoot, "examples/kamal/config"), path.join(dir, "config"), { recursive: true });
    const main = sandboxHosts();
    let yml = readFileSync(path.join(dir, "config/deploy.yml"), "utf8")
      .replace("service: hello", "service: kpinit")
      .replaceAll(main.registry, sb.registry.address)
      .replaceAll(`${main.app1}\n`, `${host("app1").address}\n`)
      .replaceAll(`${main.app2}`, host("app2").address)
      .replaceAll(`http://${main.db1}:9000`, `http://${host("app3").address}:9100`)
      .replace(`host: ${main.db1}`, `host: ${host("app3").address}`)
      .replace('port: "9000:80"', 'port: "9100:80"');
    yml = yml.replace(`- ${main.app1}:`, `- ${host("app1").address}:`);
    writeFileSync(path.join(dir, "config/deploy.yml"), yml);
    // A Kamal 1 config: its secrets in .env (Kamal 2's would be in .kamal/secrets).
    writeFileSync(path.join(dir, ".env"), `KAMAL_REGISTRY_PASSWORD=${sb.registry.password}\nAPI_TOKEN=init-api-token\nSTORE_PASSWORD=init-store-password\n`);
    execFileSync("git", ["init", "-q"], { cwd: dir });
    return dir;
  }

  /** The hosts and registry examples/kamal names (the main lane's). */
  function sandboxHosts() {
    const all = JSON.parse(execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "status", "--json"], { encoding: "utf8" })) as { hosts: { name: string; address: string }[]; registry: { address: string } };
    const a = (n: string) => all.hosts.find((h) => h.name === n)!.address;
    return { app1: a("app1"), app2: a("app2"), db1: a("db1"), registry: all.registry.address };
  }

  beforeAll(async () => {
    for (const h of ["app1", "app2", "app3"]) await sh(h, "docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal");
    const dir = kamalProject("cli-init");
    const { PULUMI_BACKEND_URL: _b, ...env } = new PulumiProject(dir).env;
    k = { dir, env: { ...env, TRAEFIK_IMAGE: sb.images.traefik } };
  });

  afterAll(async () => {
    if (!k) return;
    const r = spawnSync("pulumi", ["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", "production"], { cwd: k.dir, env: k.env, encoding: "utf8" });
    if (r.status !== 0) console.error(r.stdout + r.stderr);
  });

  it("init: Pulumi.yaml with a file backend, a KamalApp program, a stack with the host keys from a verified file", async () => {
    const r = await cli(["init", "--known-hosts", knownHostsPath, "--ssh-key", keyPath], k);
    expect(r.code, out(r)).toBe(0);
    expect(r.stdout).toBe(
      [
        `Host keys of ${host("app1").address}, ${host("app2").address}, ${host("app3").address} taken from ${knownHostsPath}`,
        "Wrote Pulumi.yaml and .kamal/pulumi/index.js (state in .kamal/pulumi/state/ on this machine, kept out of git; a team keeps it in an object store: pulumi-kamal state move --to s3://BUCKET)",
        `.kamal/pulumi/package.json: the program runs with pulumi-kamal from ${repoRoot} (linked in .kamal/pulumi/node_modules; npm install --prefix .kamal/pulumi installs it on another machine)`,
        `Stack production: ${host("app1").address}, ${host("app2").address}, ${host("app3").address}`,
        "Next: pulumi-kamal deploy (the version defaults to the git commit), then pulumi-kamal details",
        "",
      ].join("\n"),
    );
    expect(readFileSync(path.join(k.dir, "Pulumi.yaml"), "utf8")).toContain("    typescript: false\nmain: .kamal/pulumi/index.js\nbackend:\n  url: file://./.kamal/pulumi/state\n");
    const known = spawnSync("pulumi", ["config", "get", "knownHosts", "--stack", "production"], { cwd: k.dir, env: k.env, encoding: "utf8" }).stdout;
    for (const h of ["app1", "app2", "app3"]) expect(known).toContain(`${host(h).address} ssh-ed25519 `);
    // A second init finds a project init made (as in a teammate's clone): it links the
    // program's packages and lists the stacks; it changes nothing else.
    const again = await cli(["init"], k);
    expect(again.code, out(again)).toBe(0);
    expect(again.stdout).toContain("Stack production: in file://./.kamal/pulumi/state\n");
    // Another backend is not init's to change any more.
    expect((await cli(["init", "--backend", "s3://elsewhere"], k)).stderr).toMatch(/was made by pulumi-kamal init already: its backend is Pulumi.yaml's; pulumi-kamal state move --to URL moves its stacks to another/);
  });

  it("init without a known_hosts file prints the keys the hosts present, as ssh-keygen -l does, and asks", async () => {
    const dir = kamalProject("cli-init-scan");
    const env = { ...k.env };
    const refused = await cli(["init"], { dir, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("confirm the host keys: run init in a terminal, or give --yes (trust what the hosts present) or --known-hosts FILE (keys verified out of band)");
    expect(existsSync(path.join(dir, "Pulumi.yaml"))).toBe(false);
    const fp = (h: string) => execFileSync("ssh-keygen", ["-lf", "-"], { input: readFileSync(knownHostsPath, "utf8").split("\n").filter((l) => l.startsWith(`${host(h).address} ssh-ed25519`)).join("\n") }).toString().split(" ")[1];
    for (const h of ["app1", "app2", "app3"]) expect(refused.stdout).toContain(`  ${host(h).address}  ssh-ed25519  ${fp(h)}`);
    const yes = await cli(["init", "--yes", "--ssh-key", keyPath], { dir, env });
    expect(yes.code, out(yes)).toBe(0);
  });

  it("init reads the keys through deploy.yml's jump host (ssh.proxy), the jump host's too; bootstrap then reaches the hosts through it", async () => {
    const dir = kamalProject("cli-init-jump");
    const jump = host("db1").address;
    writeFileSync(path.join(dir, "config/deploy.yml"), `${readFileSync(path.join(dir, "config/deploy.yml"), "utf8")}\nssh:\n  proxy: root@${jump}\n`);
    const env = { ...k.env };
    const r = await cli(["init", "--yes", "--ssh-key", keyPath], { dir, env });
    expect(r.code, out(r)).toBe(0);
    const fp = (h: string) => execFileSync("ssh-keygen", ["-lf", "-"], { input: readFileSync(knownHostsPath, "utf8").split("\n").filter((l) => l.startsWith(`${host(h).address} ssh-ed25519`)).join("\n") }).toString().split(" ")[1];
    expect(r.stdout).toContain(`\n  ${jump}  ssh-ed25519  ${fp("db1")}  (jump host)\n`);
    for (const h of ["app1", "app2", "app3"]) expect(r.stdout).toContain(`\n  ${host(h).address}  ssh-ed25519  ${fp(h)}\n`);
    const known = spawnSync("pulumi", ["config", "get", "--stack", "production", "knownHosts"], { cwd: dir, env, encoding: "utf8" });
    expect(known.stdout.split("\n").filter(Boolean).map((l) => l.split(" ")[0]).sort()).toEqual([host("app1").address, host("app2").address, host("app3").address, jump].sort());
    // Kamal's docker-setup hook runs once every host is ready, with the command's KAMAL_* env.
    mkdirSync(path.join(dir, ".kamal/hooks"), { recursive: true });
    writeFileSync(path.join(dir, ".kamal/hooks/docker-setup"), '#!/bin/sh\necho "on $KAMAL_HOSTS by $KAMAL_COMMAND $KAMAL_SUBCOMMAND for $KAMAL_SERVICE"\n', { mode: 0o755 });
    const boot = await cli(["bootstrap"], { dir, env });
    expect(boot.code, out(boot)).toBe(0);
    expect(boot.stdout.split("\n")[0]).toBe(`Bootstrapping ${host("app1").address}, ${host("app2").address}, ${host("app3").address} (stack production, hosts from config/deploy.yml)`);
    for (const h of ["app1", "app2", "app3"]) expect(boot.stdout).toContain(`\n${host(h).address} (root): `);
    expect(boot.stdout).toContain(`\nRunning the docker-setup hook...\n  docker-setup: on ${host("app1").address},${host("app2").address},${host("app3").address} by server bootstrap for kpinit\n`);
    const skipped = await cli(["bootstrap", "-H"], { dir, env });
    expect(skipped.code, out(skipped)).toBe(0);
    expect(skipped.stdout).toContain("\n.kamal/hooks/docker-setup: not run (--skip-hooks)\n");
  });

  it("preview, deploy v1, deploy v2 and rollback v1 with Kamal-like progress; 0 failed requests under load", async () => {
    const preview = await cli(["preview", "--version", "v1", "--skip-push"], k);
    expect(preview.code, out(preview)).toBe(0);
    expect(preview.stdout).toMatch(/\+ pulumi-nodejs:dynamic\/kamal:AppContainer/);
    const first = await cli(["deploy", "--version", "v1", "--skip-push"], k);
    expect(first.code, out(first)).toBe(0);
    expect(first.stdout.split("\n")[0]).toBe("Deploying version v1 (stack production, config version)");
    expect(first.stdout).toContain(`\n  ${host("app1").address}: kpinit-web-v1 is serving`);
    expect(first.stdout).toMatch(/^Finished all in [0-9.]+ seconds$/m);
    const url = `http://${host("app1").address}/version`;
    const swap = async (args: string[]) => {
      const loads = [startLoad({ url, rate: 50, connections: 3 }), startLoad({ url, rate: 20, newConnections: true })];
      await new Promise((r) => setTimeout(r, 300));
      const r = await cli(args, k);
      const load = await Promise.all(loads.map((l) => l.stop()));
      return { r, failed: load.reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0), total: load.reduce((n, l) => n + l.total, 0) };
    };
    const second = await swap(["deploy", "--version", "v2", "--skip-push"]);
    expect(second.r.code, out(second.r)).toBe(0);
    expect(second.failed).toBe(0);
    expect(JSON.parse((await httpGet(url)).body).version).toBe("v2");
    // A version the hosts no longer have is refused before anything changes.
    const gone = await cli(["rollback", "v0"], k);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain(`the app version v0 is not available as a container on ${host("app1").address}, ${host("app2").address}`);
    const back = await swap(["rollback", "v1"]);
    expect(back.r.code, out(back.r)).toBe(0);
    expect(back.r.stdout.split("\n")[0]).toBe("Rolling back to version v1 (stack production, config version)");
    expect(back.r.stdout).not.toMatch(/pulling/);
    expect(back.failed).toBe(0);
    expect(back.total).toBeGreaterThan(100);
    expect(JSON.parse((await httpGet(url)).body).version).toBe("v1");
    const audit = await cli(["audit", "--host", host("app1").address], k);
    expect(audit.stdout).toMatch(/\[web\] Rolled back app to version v1 \(was v2\)$/m);
  });

  it("maintenance and live: 503 with the message while the containers run, then back; a failure is the engine's error, not a trace", async () => {
    const url = `http://${host("app2").address}/version`;
    const on = await cli(["maintenance", "--message", "Back at ten"], k);
    expect(on.code, out(on)).toBe(0);
    expect(on.stdout.split("\n")[0]).toBe("Maintenance mode for kpinit (\"Back at ten\") (stack config pulumi-kamal:maintenance)");
    const page = await httpGet(url);
    expect(page.status).toBe(503);
    expect(page.body).toContain("Back at ten");
    // The operator's switch is in the stack config: a deploy keeps it.
    const again = await cli(["deploy", "--version", "v1", "--skip-push"], k);
    expect(again.code, out(again)).toBe(0);
    expect((await httpGet(url)).status).toBe(503);
    const live = await cli(["live"], k);
    expect(live.code, out(live)).toBe(0);
    expect((await httpGet(url)).status).toBe(200);
    const broken = await cli(["deploy", "--version", "no-such-tag", "--skip-push"], k);
    expect(broken.code).toBe(1);
    expect(broken.stderr.startsWith("pulumi-kamal deploy: failed:\n")).toBe(true);
    expect(broken.stderr).toMatch(new RegExp(`^${host("app1").address.replace(/\./g, "\\.")}: pulling \\S+:no-such-tag: command failed with exit code 1`, "m"));
    expect(broken.stderr).toContain("(the stack's version config is back to v1: the next `pulumi up` keeps every host on it, or puts it back)");
    expect(broken.stderr).not.toMatch(/\n\s+at /);
    expect(JSON.parse((await httpGet(url)).body).version).toBe("v1");
  });
  it("accessory: a deploy leaves an edited accessory running as it is and says so; accessory reboot applies it, its data kept", async () => {
    const id = () => sh("app3", "docker inspect -f '{{.Id}}' kpinit-store");
    const before = await id();
    const data = await sh("app3", `docker inspect -f '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Source}}{{end}}{{end}}' kpinit-store`);
    await sh("app3", `echo kept > ${data}/marker`);
    // Its file uploaded as Kamal uploads it: mode 755 when deploy.yml names none.
    const conf = await sh("app3", `docker inspect -f '{{range .Mounts}}{{if eq .Destination "/etc/store.conf"}}{{.Source}}{{end}}{{end}}' kpinit-store`);
    expect(await sh("app3", `stat -c %a ${conf}`)).toBe("755");
    const yml = path.join(k.dir, "config/deploy.yml");
    writeFileSync(yml, readFileSync(yml, "utf8").replace("TESTAPP_DATA_DIR: /data", "TESTAPP_DATA_DIR: /data\n        STORE_MODE: edited"));
    const pending = `${host("app3").address}: accessory store has changes not applied (env): a deploy leaves accessories as they run, as Kamal's does; \`pulumi-kamal accessory reboot store\` applies them`;
    const preview = await cli(["preview", "--version", "v1", "--skip-push"], k);
    expect(preview.code, out(preview)).toBe(0);
    expect(preview.stdout).toContain(pending);
    const deploy = await cli(["deploy", "--version", "v1", "--skip-push"], k);
    expect(deploy.code, out(deploy)).toBe(0);
    expect(deploy.stdout).toContain(pending);
    expect(await id()).toBe(before);
    const reboot = await cli(["accessory", "reboot", "store"], k);
    expect(reboot.code, out(reboot)).toBe(0);
    expect(reboot.stdout.split("\n")[0]).toBe("Rebooting accessory store (stack production)");
    expect(await id()).not.toBe(before);
    expect(await sh("app3", "docker inspect -f '{{json .Config.Env}}' kpinit-store")).toContain('"STORE_MODE=edited"');
    expect(await sh("app3", `cat ${data}/marker`)).toBe("kept");
    // Applied: the next deploy has nothing pending and leaves it as it is.
    const rebooted = await id();
    const again = await cli(["deploy", "--version", "v1", "--skip-push"], k);
    expect(again.code, out(again)).toBe(0);
    expect(again.stdout).not.toContain("has changes not applied");
    expect(await id()).toBe(rebooted);
  });

  it("aliases: deploy.yml's run as Kamal runs them (the alias's words, then the arguments given)", async () => {
    const yml = path.join(k.dir, "config/deploy.yml");
    writeFileSync(yml, `${readFileSync(yml, "utf8")}\naliases:\n  whoami: app exec --reuse "sh -c 'echo $KAMAL_CONTAINER_NAME'"\n`);
    const r = await cli(["whoami", "--host", host("app1").address], k);
    expect(r, out(r)).toMatchObject({ code: 0, stdout: "kpinit-web-v1\n" });
  });

  it("Kamal's -H, -q, -v and -p: hooks recorded not run, no progress, the engine's lines, the primary host", async () => {
    const hooks = path.join(k.dir, ".kamal/hooks");
    const ran = path.join(k.dir, "post-deploy.ran");
    mkdirSync(hooks, { recursive: true });
    writeFileSync(path.join(hooks, "post-deploy"), `#!/bin/sh\necho "$KAMAL_VERSION" >> ${JSON.stringify(ran)}\n`, { mode: 0o755 });
    try {
      const skipped = await cli(["deploy", "-H", "-q", "--version", "v2", "--skip-push"], k);
      expect(skipped, out(skipped)).toMatchObject({ code: 0, stdout: "" });
      expect(existsSync(ran)).toBe(false);
      expect(JSON.parse((await httpGet(`http://${host("app1").address}/version`)).body).version).toBe("v2");
      const verbose = await cli(["deploy", "-v", "--version", "v1", "--skip-push"], k);
      expect(verbose.code, out(verbose)).toBe(0);
      expect(readFileSync(ran, "utf8")).toBe("v1\n");
      // The engine's own lines, beside the progress.
      expect(verbose.stdout).toMatch(/^Updating \(production\):$/m);
      expect(verbose.stdout).toMatch(/\[kamal\] .*post-deploy: |post-deploy hook done/);
      const primary = await cli(["app", "version", "-p"], k);
      expect(primary, out(primary)).toMatchObject({ code: 0 });
      expect(primary.stdout).toBe(`${host("app1").address}: v1\n`);
    } finally {
      rmSync(hooks, { recursive: true, force: true });
    }
  });

  it("proxy reboot: each host's Traefik restarted with its port handed over, 0 failed; the proxy-reboot hooks around it, per host with --rolling", async () => {
    const hooks = path.join(k.dir, ".kamal/hooks");
    const log = path.join(k.dir, "proxy-reboot.log");
    mkdirSync(hooks, { recursive: true });
    for (const h of ["pre-proxy-reboot", "post-proxy-reboot"]) {
      writeFileSync(path.join(hooks, h), `#!/bin/sh\necho "${h} $KAMAL_HOSTS $KAMAL_COMMAND $KAMAL_SUBCOMMAND" >> ${JSON.stringify(log)}\n`, { mode: 0o755 });
    }
    const [a1, a2] = [host("app1").address, host("app2").address];
    const traefikIds = () => Promise.all(["app1", "app2"].map((h) => sh(h, "docker inspect -f '{{.Id}}' traefik")));
    try {
      // The program as deployed (the last test's hook is gone): a reboot's targeted update
      // refuses to delete what it does not target, as Pulumi's --target does.
      const synced = await cli(["deploy", "--version", "v1", "--skip-push"], k);
      expect(synced.code, out(synced)).toBe(0);
      expect(synced.stdout).not.toContain("proxy-reboot");
      const before = await traefikIds();
      const url = `http://${a1}/version`;
      const loads = [startLoad({ url, rate: 50, connections: 3 }), startLoad({ url, rate: 20, newConnections: true })];
      await new Promise((r) => setTimeout(r, 300));
      const r = await cli(["proxy", "reboot"], k);
      const load = await Promise.all(loads.map((l) => l.stop()));
      expect(r.code, out(r)).toBe(0);
      expect(load.reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0)).toBe(0);
      expect(r.stdout.split("\n")[0]).toBe(`Rebooting Traefik on ${a1}, ${a2} (stack production; the port handed over, no connection refused)`);
      const after = await traefikIds();
      expect(after.every((id, i) => id !== before[i])).toBe(true);
      expect(readFileSync(log, "utf8")).toBe(`pre-proxy-reboot ${a1},${a2} proxy reboot\npost-proxy-reboot ${a1},${a2} proxy reboot\n`);
      rmSync(log);
      const rolling = await cli(["proxy", "reboot", "--rolling"], k);
      expect(rolling.code, out(rolling)).toBe(0);
      expect(readFileSync(log, "utf8")).toBe([a1, a2].flatMap((h) => [`pre-proxy-reboot ${h} proxy reboot`, `post-proxy-reboot ${h} proxy reboot`]).join("\n") + "\n");
      // The reboot is recorded: the next deploy restarts no Traefik.
      const rolled = await traefikIds();
      const deploy = await cli(["deploy", "--version", "v1", "--skip-push"], k);
      expect(deploy.code, out(deploy)).toBe(0);
      expect(await traefikIds()).toEqual(rolled);
    } finally {
      rmSync(hooks, { recursive: true, force: true });
    }
  });
});

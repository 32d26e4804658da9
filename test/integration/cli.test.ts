/**
 * `pulumi-kamal` on a deployed stack, against the sandbox with the real Pulumi engine: each
 * command's output asserted (details, logs from both hosts with their prefixes, exec with
 * the role's env and secret visible to the app only, audit lines after a deploy and a
 * rollback, the lock refusing while held), and `exec -i` and `logs -f` in a real terminal
 * (tmux, reading its screen). Runs in lane three, after release.test.ts (test/helpers/lane.ts).
 */
import { spawn, execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/executor";
import { httpGet } from "../helpers/http";
import { PulumiProject, scratchProject, type PulumiRun } from "../helpers/pulumi";
import { host, repoRoot, target } from "../helpers/sandbox";

const pool = new SshPool();
const SECRET = "ops-secret-7f3a91c2";
const CLI = path.join(repoRoot, "dist/cli/main.js");
let p: PulumiProject;

const out = (r: PulumiRun) => r.stdout + r.stderr;

async function set(key: string, value: string, secret = false) {
  const r = await p.run(["config", "set", secret ? "--secret" : "--plaintext", "--stack", p.stack, key, value]);
  expect(r.code, r.stderr).toBe(0);
}

async function sh(h: string, command: string): Promise<string> {
  return (await (await pool.connect(target(h))).exec(command)).stdout.trim();
}

/** Runs the CLI as a user would, in the project's directory. */
function cli(args: string[]): Promise<PulumiRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: p.dir, env: p.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
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
    execFileSync("tmux", ["new-session", "-d", "-s", name, "-x", "160", "-y", "40", `bash ${script}`]);
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
  pool.closeAll();
});

describe("pulumi-kamal", () => {
  it("says how to use it, and refuses a bad command line before reading any stack (exit 2)", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    for (const c of ["details", "logs", "exec", "audit", "lock"]) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, "m"));
    const logsHelp = await cli(["logs", "--help"]);
    expect(logsHelp.stdout).toContain("pulumi-kamal logs [ROLE|ACCESSORY|traefik] [--host H] [-f] [--since T] [-n N] [--grep RE]");
    expect(await cli(["deploi"])).toMatchObject({ code: 2, stderr: 'pulumi-kamal: no command "deploi" (commands: details, logs, exec, audit, lock); pulumi-kamal --help\n' });
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
    // The command's own output and the command lines on the host carry no secret.
    const quiet = await cli(["exec", "--host", "app1", "--", "sh", "-c", 'test -n "$OPS_SECRET" && echo has-secret']);
    expect(quiet).toMatchObject({ code: 0, stdout: "has-secret\n", stderr: "" });
    // The exit code is the command's; the one-off containers are gone.
    expect((await cli(["exec", "--host", "app2", "--", "sh", "-c", "exit 7"])).code).toBe(7);
    expect(await sh("app1", "docker ps -a --filter label=kamal.exec --format '{{.Names}}'")).toBe("");
    // --reuse runs inside the serving container.
    const reuse = await cli(["exec", "--reuse", "--role", "web", "--host", "app2", "--", "sh", "-c", "echo $KAMAL_CONTAINER_NAME"]);
    expect(reuse).toMatchObject({ code: 0, stdout: "ops-web-staging-v2\n" });
  });

  it("exec -i: a console in a real terminal", async () => {
    const t = Terminal.start("kp-exec", ["exec", "-i", "--host", "app1", "--", "sh"]);
    try {
      await t.waitFor((s) => /[#$] ?$/m.test(s), "shell prompt");
      t.keys('echo "in $KAMAL_CONTAINER_NAME at $((6*7))"', "Enter");
      const screen = await t.waitFor((s) => /in ops-web-staging-exec-v2-[0-9a-f]{6} at 42/.test(s), "the command's answer");
      expect(screen).not.toContain(SECRET);
      t.keys("exit 5", "Enter");
      const t0 = Date.now();
      while (t.exitStatus() === undefined && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 200));
      expect(t.exitStatus()).toBe(5);
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
      const t0 = Date.now();
      while (t.exitStatus() === undefined && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 200));
      expect(t.exitStatus()).toBe(0);
    } finally {
      t.kill();
    }
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
});

/**
 * The CLI's pure parts: the state it reads (secrets unwrapped in memory, each resource
 * parsed with the provider's schemas), the choice of what a command acts on (exact
 * messages), the details table, log line splitting, and the command line (exit codes).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { formatDetails, parseInspect, table, uptime, type ContainerRow } from "../../../cli/details";
import { LineSplitter } from "../../../cli/logs";
import { main } from "../../../cli/main";
import { restoreConfigFile } from "../../../cli/pulumi";
import { primaryHost, primaryRole, scopesOnHosts, selectApps } from "../../../cli/select";
import { deployedFrom, firstLine, unwrapSecrets } from "../../../cli/stack";

const secret = (v: unknown) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(v) });
const app = (hostName: string, address: string, role: string, extra: Record<string, unknown> = {}) => ({
  urn: `urn:pulumi:prod::shop::kamal:Service$pulumi-nodejs:dynamic/kamal:AppContainer::shop-${role}-${hostName}`,
  type: "pulumi-nodejs:dynamic/kamal:AppContainer",
  outputs: {
    hostName, service: "shop", role, destination: "production", image: "r.example.com/shop", version: "v2",
    connection: { host: address, user: "deploy", privateKey: secret("-----BEGIN KEY-----") },
    env: { A: "1" }, envFile: { path: ".kamal/apps/shop-production/env/roles/web.env", hash: secret("abc") },
    containerName: `shop-${role}-production-v2`, status: "running", imageDigest: "sha256:0123", __provider: "exports.handler = …", ...extra,
  },
});
const deployment = {
  resources: [
    { urn: "urn:pulumi:prod::shop::pulumi:pulumi:Stack::shop-prod", type: "pulumi:pulumi:Stack", outputs: {} },
    app("web-2", "10.0.0.2", "web"),
    app("web-1", "10.0.0.1", "web"),
    app("web-1", "10.0.0.1", "jobs"),
    { ...app("web-3", "10.0.0.3", "web"), delete: true },
    {
      urn: "urn:pulumi:prod::shop::kamal:Accessory$pulumi-nodejs:dynamic/kamal:AccessoryContainer::db-db-1",
      type: "pulumi-nodejs:dynamic/kamal:AccessoryContainer",
      outputs: { hostName: "db-1", connection: { host: "10.0.0.9" }, service: "shop", name: "db", image: "mysql:8", status: "running" },
    },
  ],
};

describe("the stack it reads", () => {
  it("unwraps secrets (decrypted by the export) in memory, at any depth", () => {
    expect(unwrapSecrets({ a: [secret({ b: secret("c") })], d: 1 })).toEqual({ a: [{ b: "c" }], d: 1 });
    expect(() => unwrapSecrets({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:xyz" })).toThrow("the stack's secrets are still encrypted (the export did not decrypt them)");
  });

  it("parses each container resource with the provider's schema, skipping deleted ones, sorted by service, role and host", () => {
    const d = deployedFrom("prod", "/p", deployment);
    expect(d.apps.map((a) => `${a.cfg.role}@${a.cfg.hostName} ${a.container}`)).toEqual(["jobs@web-1 shop-jobs-production-v2", "web@web-1 shop-web-production-v2", "web@web-2 shop-web-production-v2"]);
    expect(d.apps[1].cfg.connection).toMatchObject({ host: "10.0.0.1", user: "deploy", port: 22, privateKey: "-----BEGIN KEY-----" });
    expect(d.apps[1].resource).toBe("shop-web-web-1");
    expect(d.accessories.map((a) => [a.cfg.name, a.container, a.cfg.hostName])).toEqual([["db", "shop-db", "db-1"]]);
  });

  it("says the Pulumi CLI's error in one line", () => {
    expect(firstLine({ stderr: "some preamble\nerror: no stack named 'nope' found\n    at x (y.js:1)" })).toBe("no stack named 'nope' found");
    expect(firstLine(new Error("spawn pulumi ENOENT"))).toBe("spawn pulumi ENOENT");
  });
});

describe("what a command acts on", () => {
  const d = deployedFrom("prod", "/p", deployment);

  it("selects by role and host (name or address); refuses names the stack does not have", () => {
    expect(selectApps(d, { role: "web", host: "10.0.0.2" }).map((a) => a.cfg.hostName)).toEqual(["web-2"]);
    expect(() => selectApps(d, { role: "api" })).toThrow("stack prod has no role api (roles: jobs, web)");
    expect(() => selectApps(d, { service: "blog" })).toThrow("stack prod has no service blog (it has shop)");
    expect(() => selectApps(d, { role: "jobs", host: "web-2" })).toThrow("no jobs container of stack prod runs on web-2 (hosts: web-1)");
    expect(primaryRole(d.apps)).toBe("web");
    expect(primaryRole(selectApps(d, { role: "jobs" }))).toBe("jobs");
  });

  it("takes Kamal's -p as the primary role's first host", () => {
    expect(primaryHost(d)).toBe("web-1");
    expect(primaryHost(d, "shop")).toBe("web-1");
    expect(() => primaryHost(d, "blog")).toThrow("stack prod has no service blog (it has shop)");
  });

  it("takes the Service's primary role where it is recorded (primary_role other than the default)", () => {
    const named = deployedFrom("prod", "/p", { ...deployment, resources: deployment.resources.map((r) => (r.type.endsWith(":AppContainer") && "role" in r.outputs && r.outputs.role === "jobs" ? { ...r, outputs: { ...r.outputs, primary: true } } : r)) });
    expect(primaryRole(named.apps)).toBe("jobs");
    expect(primaryHost(named)).toBe("web-1");
    expect(primaryRole(selectApps(named, { role: "web" }))).toBe("web");
  });

  it("finds each (host, service, destination) once: where a lock and an audit log are", () => {
    expect(scopesOnHosts(d.apps).map((a) => a.cfg.hostName)).toEqual(["web-1", "web-2"]);
  });
});

describe("details", () => {
  it("reads docker inspect's line, and says uptime as a person would", () => {
    expect(parseInspect("/shop-web-production-v2\trunning\thealthy\t2026-12-02T10:00:00.5Z\tsha256:ab\tr.example.com/shop:v2\tv2\t1")).toEqual({
      status: "running", health: "healthy", startedAt: "2026-12-02T10:00:00.5Z", imageId: "sha256:ab", image: "r.example.com/shop:v2", version: "v2", restarts: 1,
    });
    expect(parseInspect("/traefik\trunning\t\tT\tsha256:cd\ttraefik:v3\t<no value>\t0")).toMatchObject({ health: "-", version: "" });
    expect(parseInspect("")).toBeUndefined();
    const t0 = Date.parse("2026-12-02T10:00:00Z");
    expect([12_000, 250_000, 7_500_000, 280_000_000].map((ms) => uptime("2026-12-02T10:00:00Z", t0 + ms))).toEqual(["12s", "4m 10s", "2h 5m", "3d 5h"]);
  });

  it("prints one table per kind, a drifted version next to the state's", () => {
    const rows: ContainerRow[] = [
      { kind: "app", service: "shop", role: "web", destination: "production", host: "web-1", address: "10.0.0.1", container: "shop-web-production-v2", version: "v1", stateVersion: "v2", status: "running", health: "healthy", uptime: "4m 10s", restarts: 0, image: "r/shop:v1", digest: "sha256:0123456789abcdef" },
      { kind: "accessory", name: "db", host: "db-1", address: "10.0.0.9", container: "shop-db", status: "exited", health: "-", uptime: "-", image: "mysql:8" },
    ];
    expect(formatDetails(deployedFrom("prod", "/p", deployment), rows)).toBe(
      [
        "Stack prod",
        "",
        "Apps",
        "SERVICE            ROLE  HOST              VERSION         CONTAINER               STATUS   HEALTH   UPTIME  RESTARTS  DIGEST",
        "shop (production)  web   web-1 (10.0.0.1)  v1 (state: v2)  shop-web-production-v2  running  healthy  4m 10s  0         0123456789ab",
        "",
        "Accessories",
        "NAME  HOST             CONTAINER  IMAGE    STATUS  HEALTH  UPTIME",
        "db    db-1 (10.0.0.9)  shop-db    mysql:8  exited  -       -",
      ].join("\n"),
    );
    expect(table([["A", "B"], ["long cell", "x"]])).toBe("A          B\nlong cell  x");
  });
});

describe("logs", () => {
  it("splits chunks into whole lines (a terminal's \\r\\n too), the last partial one at the end", () => {
    const got: string[] = [];
    const s = new LineSplitter((l) => got.push(l));
    s.push("one\ntw");
    s.push("o\r\nthree");
    expect(got).toEqual(["one", "two"]);
    s.end();
    expect(got).toEqual(["one", "two", "three"]);
  });
});

describe("the command line", () => {
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const [o, e] = [process.stdout.write, process.stderr.write];
    process.stdout.write = ((c: string) => (out.push(String(c)), true)) as typeof process.stdout.write;
    process.stderr.write = ((c: string) => (err.push(String(c)), true)) as typeof process.stderr.write;
    try {
      const code = await main(argv);
      return { code, stdout: out.join(""), stderr: err.join("") };
    } finally {
      process.stdout.write = o;
      process.stderr.write = e;
    }
  };

  it("exits 2 on a usage error, with one line naming the command and the fix", async () => {
    expect(await run([])).toMatchObject({ code: 2 });
    expect(await run(["help"])).toMatchObject({ code: 0 });
    expect(await run(["nope"])).toEqual({ code: 2, stdout: "", stderr: 'pulumi-kamal: no command "nope" (commands: init, bootstrap, setup, deploy, redeploy, build, rollback, preview, maintenance, live, details, logs, exec, audit, lock, accessory, app, proxy, server, registry, prune, secrets, state, unlock); pulumi-kamal --help\n' });
    expect(await run(["exec", "--role", "web"])).toEqual({ code: 2, stdout: "", stderr: "pulumi-kamal exec: exec needs a command: pulumi-kamal exec -- bin/rails console\n" });
    expect(await run(["lock", "steal"])).toEqual({ code: 2, stdout: "", stderr: "pulumi-kamal lock: lock needs one of: status, acquire -m MSG, release\n" });
    expect(await run(["logs", "--lines"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^pulumi-kamal logs: Option '-n, --lines <value>' argument missing\n$/) });
    expect(await run(["details", "--colour"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^pulumi-kamal details: Unknown option '--colour'/) });
    // Kamal's class options: refused where they cannot apply, before any stack is read.
    expect(await run(["deploy", "-p"])).toEqual({ code: 2, stdout: "", stderr: "pulumi-kamal deploy: -p/--primary: deploy does not run on chosen hosts (its hosts are the stack's)\n" });
    expect(await run(["logs", "-p", "--host", "web-1"])).toEqual({ code: 2, stdout: "", stderr: "pulumi-kamal logs: -p/--primary and -h/--hosts: give one\n" });
    expect(await run(["deploy", "-q", "-v"])).toEqual({ code: 2, stdout: "", stderr: "pulumi-kamal deploy: -q/--quiet and -v/--verbose: give one\n" });
  });

  it("shows each command's usage with --help, and passes everything after -- to the remote command", async () => {
    const h = await run(["exec", "--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout.split("\n")[0]).toBe("pulumi-kamal exec [--role R] [--host H] [-i] [--reuse] [--detach] [--raw] [-e KEY=VALUE]... -- CMD [ARG...]");
    // Kamal's own refusals, before any stack is read.
    expect(await run(["exec", "--detach", "-i", "--", "true"])).toMatchObject({ code: 2, stderr: "pulumi-kamal exec: Detach is not compatible with interactive\n" });
    expect(await run(["exec", "-e", "NOPE", "--", "true"])).toMatchObject({ code: 2, stderr: "pulumi-kamal exec: -e takes KEY=VALUE, not NOPE\n" });
    expect(await run(["exec", "--raw", "-i", "--detach", "--", "true"])).toMatchObject({ code: 2, stderr: "pulumi-kamal exec: Detach is not compatible with interactive\n" });
    expect(await run(["exec", "--raw", "-i", "--", "true"])).toMatchObject({ code: 2, stderr: "pulumi-kamal exec: Raw is not compatible with interactive\n" });
    // "--help" after "--" is the remote command's: the stack is read (and here, is missing).
    const r = await run(["exec", "--cwd", "/nonexistent-dir", "--", "ls", "--help"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pulumi-kamal exec: no Pulumi project in \/nonexistent-dir/);
  });
});

describe("deploy.yml's aliases, as Kamal runs them", () => {
  it("reads a Kamal command line as this CLI's", async () => {
    const { kamalCommandLine } = await import("../../../cli/aliases");
    expect(kamalCommandLine(["app", "exec", "--interactive", "--reuse", "bin/rails console"])).toEqual(["exec", "--interactive", "--reuse", "bin/rails console"]);
    expect(kamalCommandLine(["app", "logs", "-f", "-r", "web"])).toEqual(["logs", "-f", "--role", "web"]);
    expect(kamalCommandLine(["traefik", "logs", "-h", "10.0.0.1"])).toEqual(["proxy", "logs", "--host", "10.0.0.1"]);
    expect(kamalCommandLine(["accessory", "restart", "db"])).toEqual(["accessory", "restart", "db"]);
    expect(kamalCommandLine(["server", "bootstrap"])).toEqual(["bootstrap"]);
  });

  it("takes Kamal's -d as the destination's stack and -r as --role where a command has roles", async () => {
    const { kamalGlobalOptions } = await import("../../../cli/aliases");
    expect(kamalGlobalOptions(["-d", "staging", "--roles=web", "-f"], { role: true, host: true })).toEqual(["--stack", "staging", "--role=web", "-f"]);
    expect(kamalGlobalOptions(["--destination=production", "-r", "web"], { role: false, host: false })).toEqual(["--stack=production", "-r", "web"]);
    // Kamal's -h HOSTS (a value after it) where a command takes a host; -h alone is the help.
    expect(kamalGlobalOptions(["-h", "10.0.0.*", "-n", "5"], { role: true, host: true })).toEqual(["--host", "10.0.0.*", "-n", "5"]);
    expect(kamalGlobalOptions(["--hosts=a,b", "-h"], { role: true, host: true })).toEqual(["--host=a,b", "-h"]);
    expect(kamalGlobalOptions(["-h", "10.0.0.1"], { role: true, host: false })).toEqual(["-h", "10.0.0.1"]);
  });

  it("filters hosts and roles as Kamal's --hosts and --roles: comma lists of shell patterns", async () => {
    const { kamalPattern } = await import("../../../cli/select");
    const hosts = ["10.0.0.1", "10.0.0.12", "web-1.example.com", "web-2.example.com", "db.example.com"];
    expect(hosts.filter(kamalPattern("10.0.0.*"))).toEqual(["10.0.0.1", "10.0.0.12"]);
    expect(hosts.filter(kamalPattern("10.0.0.?,db.example.com"))).toEqual(["10.0.0.1", "db.example.com"]);
    expect(hosts.filter(kamalPattern("web-{1,2}.example.com"))).toEqual(["web-1.example.com", "web-2.example.com"]);
    expect(hosts.filter(kamalPattern("web-[!2].example.com"))).toEqual(["web-1.example.com"]);
    expect(["web", "workers", "jobs"].filter(kamalPattern("w*"))).toEqual(["web", "workers"]);
    expect(["web", "workers", "jobs"].filter(kamalPattern("web"))).toEqual(["web"]);
  });

  it("runs a Rails 8 app's aliases (its words split as Ruby's Shellwords, then the arguments given)", async () => {
    const { aliasCommandLine } = await import("../../../cli/aliases");
    const dir = mkdtempSync(path.join(os.tmpdir(), "aliases-"));
    mkdirSync(path.join(dir, "config"));
    // The aliases `rails new` writes into a Rails 8 app's config/deploy.yml.
    writeFileSync(path.join(dir, "config/deploy.yml"), [
      "service: hey", "image: acme/hey", "servers: [10.0.0.1]", "proxy: {}",
      "aliases:",
      '  console: app exec --interactive --reuse "bin/rails console"',
      '  shell: app exec --interactive --reuse "bash"',
      "  logs: app logs -f",
      '  dbc: app exec --interactive --reuse "bin/rails dbconsole --include-password"',
    ].join("\n"));
    expect(await aliasCommandLine(dir, "console", [])).toEqual(["exec", "--interactive", "--reuse", "bin/rails console"]);
    expect(await aliasCommandLine(dir, "logs", ["--host", "10.0.0.1"])).toEqual(["logs", "-f", "--host", "10.0.0.1"]);
    expect(await aliasCommandLine(dir, "nope", [])).toBeUndefined();
  });
});

describe("the operator's maintenance switch (stack config pulumi-kamal:maintenance)", () => {
  it("reads services in maintenance, and refuses anything else naming the key, never the value", async () => {
    const { parseOperatorMaintenance } = await import("../../../components/service");
    expect(parseOperatorMaintenance(undefined)).toEqual({});
    expect(parseOperatorMaintenance('{"shop":{"message":"Back at 10:00"},"blog":{}}')).toEqual({ shop: { message: "Back at 10:00" }, blog: {} });
    expect(() => parseOperatorMaintenance("{oops")).toThrow("stack config pulumi-kamal:maintenance: is not JSON (pulumi-kamal maintenance writes it; `pulumi-kamal live` or `pulumi config rm pulumi-kamal:maintenance` clears it)");
    expect(() => parseOperatorMaintenance('{"shop":{"message":42}}')).toThrow('stack config pulumi-kamal:maintenance: must be an object of services, e.g. {"shop":{"message":"Back at 10:00"}}');
    expect(() => parseOperatorMaintenance('["shop"]')).toThrow("must be an object of services");
  });
});

describe("the Kamal-like front end", () => {
  it("keeps the provider's progress and the summary of the engine's output, nothing else", async () => {
    const { progressLine } = await import("../../../cli/engine");
    expect(progressLine("    pulumi:pulumi:Stack kpinit-production running [kamal] 10.0.0.1: kpinit-web-v2 is serving (4.1s)")).toBe("  10.0.0.1: kpinit-web-v2 is serving (4.1s)");
    expect(progressLine(" ~  pulumi-nodejs:dynamic/kamal:AppContainer kpinit-web-10.0.0.1 updating (3s)")).toBeUndefined();
    expect(progressLine("Resources:")).toBe("Resources:");
    expect(progressLine("    ~ 2 updated")).toBe("  ~ 2 updated");
    expect(progressLine("    9 unchanged")).toBe("  9 unchanged");
    expect(progressLine("Duration: 12s")).toBe("Duration: 12s");
  });

  it("takes Kamal's version default: the git commit, marked exactly when Kamal marks it (a builder context over uncommitted changes)", async () => {
    const { deployVersion: gitVersion } = await import("../../../cli/engine");
    const { execFileSync } = await import("node:child_process");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(os.tmpdir(), "kp-git-"));
    await expect(gitVersion(dir)).rejects.toThrow(`no version given and ${dir} is not in a git repository with a commit: give --version V`);
    const git = (...a: string[]) => execFileSync("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", ...a], { cwd: dir, encoding: "utf8" }).trim();
    git("init", "-q");
    writeFileSync(path.join(dir, "a"), "1");
    git("add", "a");
    git("commit", "-qm", "one");
    const head = git("rev-parse", "HEAD");
    expect(await gitVersion(dir)).toBe(head);
    writeFileSync(path.join(dir, "a"), "2");
    // Kamal 2 builds a clean clone of the commit by default: the version is the commit.
    expect(await gitVersion(dir)).toBe(head);
    // With a builder context the working directory is built: Kamal's _uncommitted_ suffix.
    const { mkdirSync } = await import("node:fs");
    mkdirSync(path.join(dir, "config"));
    writeFileSync(path.join(dir, "config/deploy.yml"), "service: s\nimage: i\nservers: [h]\nbuilder: { arch: amd64, context: . }\n");
    expect(await gitVersion(dir)).toMatch(new RegExp(`^${head}_uncommitted_[0-9a-f]{16}$`));
    git("add", "-A");
    git("commit", "-qm", "two");
    expect(await gitVersion(dir)).toBe(git("rev-parse", "HEAD"));
  });

  it("init writes a project with a file backend and a stack per destination", async () => {
    const { destinationsOf, pulumiYaml, program, stackNames } = await import("../../../cli/init");
    const { mkdirSync, mkdtempSync, writeFileSync } = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(os.tmpdir(), "kp-init-"));
    mkdirSync(path.join(dir, "config"));
    for (const f of ["deploy.yml", "deploy.staging.yml", "deploy.production.yml", "deploy.yml.bak"]) writeFileSync(path.join(dir, "config", f), "");
    expect(destinationsOf(dir)).toEqual(["production", "staging"]);
    expect(stackNames(["production", "staging"])).toEqual([{ stack: "production", destination: "production" }, { stack: "staging", destination: "staging" }]);
    expect(stackNames([])).toEqual([{ stack: "production" }]);
    expect(pulumiYaml("shop")).toBe(
      "name: shop\ndescription: shop, deployed from config/deploy.yml by pulumi-kamal (pulumi-kamal init)\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: .kamal/pulumi/index.js\nbackend:\n  url: file://./.kamal/pulumi/state\n",
    );
    // A team's backend, as written to Pulumi.yaml.
    expect(pulumiYaml("shop", "s3://team-state/shop?endpoint=http://10.0.0.4:8333&region=us-east-1").split("backend:\n")[1]).toBe("  url: s3://team-state/shop?endpoint=http://10.0.0.4:8333&region=us-east-1\n");
    expect(program("shop")).toContain(
      'const app = new KamalApp("shop", {\n  configFile: path.join(root, "config/deploy.yml"),\n  destination: config.get("destination"),\n  version: config.get("version"),\n' +
        "  // Kamal's deploy builds and pushes the image. pulumi-kamal sets PULUMI_KAMAL_BUILD for\n  // --skip-push and rollbacks, which deploy what the registry (or the hosts) already have:\n  // \"keep\" leaves the image an earlier deploy built recorded as it is.\n" +
        '  build: process.env.PULUMI_KAMAL_BUILD === "keep" ? "keep" : process.env.PULUMI_KAMAL_BUILD !== "skip",\n  traefikImage: config.get("traefikImage"),\n' +
        '  ssh: {\n    knownHosts: config.require("knownHosts"),\n    privateKey: keyText ? pulumi.secret(keyText) : undefined,\n    privateKeyPath: keyText ? undefined : config.get("sshKeyPath"),\n    agent: !keyText && config.getBoolean("sshAgent") ? true : undefined,\n  },\n});',
    );
    // The deploying machine's own key (a CI secret) from the environment, over the stack's.
    expect(program("shop")).toContain(
      'const root = path.resolve(__dirname, "../..");\nconst keyText = process.env.PULUMI_KAMAL_SSH_KEY;\n',
    );
  });

  it("reaches deploy.yml's hosts as KamalApp does: its user, port and jump host, the stack's keys and key file", async () => {
    const { kamalConnections, kamalHostNames } = await import("../../../cli/kamalHosts");
    const { loadKamalConfig } = await import("../../../kamal/config");
    const { mkdirSync, mkdtempSync, writeFileSync } = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(os.tmpdir(), "kp-hosts-"));
    mkdirSync(path.join(dir, "config"));
    writeFileSync(
      path.join(dir, "config/deploy.yml"),
      "service: shop\nimage: acme/shop\nservers:\n  web: [10.0.0.1, 10.0.0.2]\n  jobs: [10.0.0.2]\naccessories:\n  db:\n    image: postgres:17\n    host: 10.0.0.3\nssh:\n  user: deploy\n  port: 2222\n  proxy: bastion@10.0.0.9\nregistry:\n  server: ghcr.io\n  username: acme\n  password: [KAMAL_REGISTRY_PASSWORD]\n",
    );
    const cfg = loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), env: { KAMAL_REGISTRY_PASSWORD: "x" } });
    expect(kamalHostNames(cfg)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    const c = kamalConnections(cfg, { knownHosts: "10.0.0.1 ssh-ed25519 AAAA", privateKeyPath: "/keys/id" });
    expect(c.map((x) => x.name)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect(c[0].connection).toMatchObject({
      host: "10.0.0.1",
      port: 2222,
      user: "deploy",
      privateKeyPath: "/keys/id",
      knownHosts: "10.0.0.1 ssh-ed25519 AAAA",
      proxy: { host: "10.0.0.9", user: "bastion", privateKeyPath: "/keys/id", knownHosts: "10.0.0.1 ssh-ed25519 AAAA" },
    });
  });

  it("bootstrap reports what changed on each host, then what was there", async () => {
    const { formatBootstrap } = await import("../../../cli/bootstrap");
    expect(
      formatBootstrap([
        { host: "web-1", user: "deploy", steps: [{ what: "Docker", changed: true, detail: "installed by apt-get" }, { what: "engine", changed: false, detail: "running: Docker 27.5.1" }, { what: "network kamal", changed: true, detail: "created" }] },
        { host: "web-2", user: "root", steps: [{ what: "Docker", changed: false, detail: "installed" }, { what: "docker group", changed: false, detail: "not needed (root)" }] },
      ]),
    ).toBe(
      [
        "web-1 (deploy): 2 changes",
        "  + Docker         installed by apt-get",
        "  = engine         running: Docker 27.5.1",
        "  + network kamal  created",
        "web-2 (root): ready, nothing to change",
        "  = Docker         installed",
        "  = docker group   not needed (root)",
      ].join("\n"),
    );
  });
});

describe("putting the version config back after a failed deploy", () => {
  const project = { name: "kpexp", file: "Pulumi.yaml" };
  const before = "encryptionsalt: v1:abc\nconfig:\n  kpexp:version: v1\n  kpexp:knownHosts: |\n    h ssh-ed25519 AAAA\n";
  const scratch = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kp-restore-"));
    return { dir, file: path.join(dir, "Pulumi.production.yaml") };
  };

  it("restores the file as it was when only the version changed (whatever Pulumi's layout)", () => {
    const { dir, file } = scratch();
    writeFileSync(file, "config:\n  kpexp:knownHosts: |\n    h ssh-ed25519 AAAA\n  kpexp:version: broken\nencryptionsalt: v1:abc\n");
    expect(restoreConfigFile(dir, project, "production", "version", before)).toBe(true);
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("leaves the file to the Pulumi CLI when anything else changed, or there was none", () => {
    const { dir, file } = scratch();
    const changed = "encryptionsalt: v1:abc\nconfig:\n  kpexp:version: broken\n  kpexp:knownHosts: |\n    other ssh-ed25519 BBBB\n";
    writeFileSync(file, changed);
    expect(restoreConfigFile(dir, project, "production", "version", before)).toBe(false);
    expect(readFileSync(file, "utf8")).toBe(changed);
    expect(restoreConfigFile(dir, project, "production", "version", undefined)).toBe(false);
  });
});

/** Docker and host commands: what each runs, what may run again, the deploy lock, the operator's commands, bootstrap. */
import { describe, expect, it, vi } from "vitest";
import { Command, ENGINE_DOWN } from "../../../provider/commands/command";
import { homeDirectory } from "../../../provider/commands/files";
import { appContainer } from "../../../provider/config/schemas";
import * as docker from "../../../provider/commands/docker";
import * as lock from "../../../provider/commands/lock";
import * as ops from "../../../provider/commands/operator";
import * as audit from "../../../provider/commands/audit";
import * as boot from "../../../provider/commands/bootstrap";
import { connection } from "./fixtures";

describe("docker commands", () => {
  it("finds containers by label, newest first", () => {
    expect(docker.containersWithLabels({ service: "hey", role: "web" }, { all: true, status: "exited" }).text).toBe(
      "docker ps --all --filter label=role=web --filter label=service=hey --filter status=exited --format '{{.Names}}'",
    );
  });
  it("logs in with the password on stdin", () => {
    expect(docker.dockerLogin("ghcr.io", "bot").text).toBe("docker login ghcr.io --username bot --password-stdin");
  });
  it("writes a file atomically, renamed into place only when every byte of stdin arrived", () => {
    vi.useFakeTimers({ now: new Date("2026-12-05T12:00:00Z") });
    try {
      expect(docker.writeFileAtomically("/root/.kamal/proxy/traefik/a b.yml", "routes: é\n").text).toBe(
        "{ cat > '/root/.kamal/proxy/traefik/a b.yml.tmp-mxad1mo0' && [ \"$(wc -c < '/root/.kamal/proxy/traefik/a b.yml.tmp-mxad1mo0')\" -eq 11 ] && mv -f '/root/.kamal/proxy/traefik/a b.yml.tmp-mxad1mo0' '/root/.kamal/proxy/traefik/a b.yml'; } || { rm -f '/root/.kamal/proxy/traefik/a b.yml.tmp-mxad1mo0'; exit 1; }",
      );
    } finally {
      vi.useRealTimers();
    }
  });
  it("stops with the stop wait time and reads state, cords and logs", () => {
    expect(docker.stopContainer("hey-web-v1", 20).text).toBe("docker stop --time 20 hey-web-v1");
    expect(docker.containerState("hey-web-v1").text).toBe(
      "docker container inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.RestartCount}}' hey-web-v1",
    );
    // Wherever the container sees it: the mount from a run directory's cords/<container>-<id>.
    expect(docker.cordSource("hey-web-v1").text).toBe(
      `docker container inspect --format '{{range .Mounts}}{{println .Source}}{{end}}' hey-web-v1 | grep -E '/cords/[^/]+$' | head -n 1`,
    );
    expect(docker.tieCord("/root/.kamal/cords/x").text).toBe("mkdir -p /root/.kamal/cords/x && touch /root/.kamal/cords/x/cord");
    expect(docker.containerLogs("hey-web-v1", 30).text).toBe("docker logs --tail 30 hey-web-v1 2>&1");
    expect(docker.goDuration(0.5)).toBe("500ms");
  });
});

describe("command policies: what may run again after a dropped connection, and its deadline", () => {
  const policy = (command: Command) => {
    const { notReached: _n, ...rest } = command.policy;
    return rest;
  };
  it("reads repeat, with the read deadline", () => {
    for (const c of [
      docker.containerState("a"),
      docker.serviceContainers("hey"),
      docker.scopedContainerLabels(),
      docker.imageId("r/a:v1"),
      docker.containerLogs("a"),
      docker.execInContainer("a", "/app probe http://127.0.0.1/up"),
      docker.imagesOf("r/a"),
      homeDirectory(),
    ]) {
      expect([c.text, policy(c)]).toEqual([c.text, { repeatable: true, deadline: "read", extraSeconds: 0 }]);
    }
  });
  it("changes that leave the host the same when repeated repeat, with the change deadline; a stop adds its wait", () => {
    for (const c of [docker.removeContainers(["a"], true), docker.makeDirectories(["/x"]), docker.tieCord("/c"), docker.cutCord("/c"), docker.startContainer("a"), docker.writeFileAtomically("/r/x.yml", "x")]) {
      expect([c.text, policy(c)]).toEqual([c.text, { repeatable: true, deadline: "change", extraSeconds: 0 }]);
    }
    expect(policy(docker.stopContainer("a", 25))).toEqual({ repeatable: true, deadline: "change", extraSeconds: 25 });
  });
  it("pulls and logins repeat, with the pull deadline", () => {
    expect(policy(docker.pullImage("r/a:v1"))).toEqual({ repeatable: true, deadline: "pull", extraSeconds: 0 });
    expect(policy(docker.dockerLogin("r", "u"))).toEqual({ repeatable: true, deadline: "pull", extraSeconds: 0 });
  });
  it("a command that never reached a restarting dockerd runs again: one docker invocation, or a repeatable one", () => {
    const reached = (c: Command) => c.policy.notReached;
    for (const c of [docker.runContainer({ name: "a", image: "r/a:v1" }), docker.renameContainer("a", "b"), docker.containerState("a"), docker.scopedContainerLabels()]) {
      expect([c.text, reached(c)]).toEqual([c.text, ENGINE_DOWN]);
    }
    // Two changes in one command line: the first may have run.
    const chain = Command.allOf(docker.stopContainer("a", 10), docker.renameContainer("a", "b"));
    expect(reached(chain)).toBeUndefined();
    expect(ENGINE_DOWN.test("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")).toBe(true);
  });
  it("run, create, rename and anything unknown never run twice", () => {
    for (const c of [
      docker.runContainer({ name: "a", image: "r/a:v1" }),
      docker.runContainer({ name: "a", image: "r/a:v1", createOnly: true }),
      docker.renameContainer("a", "b"),
      Command.adHoc("echo hi > /tmp/x"),
      Command.adHoc("cat > /tmp/x"),
    ]) {
      expect([c.text, policy(c)]).toEqual([c.text, { repeatable: false, deadline: "change", extraSeconds: 0 }]);
    }
  });
});

describe("the deploy lock, in Kamal 2's place and format", () => {
  const details = { holder: "pulumi-kamal shop/prod on ci@runner-1 pid 4242", at: "2026-11-23T17:00:00Z", version: "v2", message: "Automatic deploy lock" };
  const encoded = Buffer.from("Locked by: pulumi-kamal shop/prod on ci@runner-1 pid 4242 at 2026-11-23T17:00:00Z\nVersion: v2\nMessage: Automatic deploy lock").toString("base64");
  it("lives in .kamal/lock-<service>[-<destination>], or in the run directory set (run_directory)", () => {
    expect(lock.lockDir("shop")).toBe(".kamal/lock-shop");
    expect(lock.lockDir("shop", "staging")).toBe(".kamal/lock-shop-staging");
    expect(lock.lockDir("shop", "staging", "/var/kamal/")).toBe("/var/kamal/lock-shop-staging");
    expect(lock.acquireLock("/var/kamal/lock-shop", { holder: "h", at: "t", version: "v", message: "m" }).text).toMatch(/^\{ mkdir \/var\/kamal\/lock-shop 2>\/dev\/null \|\| \{ mkdir -p \/var\/kamal && mkdir \/var\/kamal\/lock-shop; \}; \} && /);
  });
  it("is taken with mkdir (atomic), its details base64-encoded as Kamal writes them", () => {
    expect(lock.acquireLock(".kamal/lock-shop", details).text).toBe(
      `{ mkdir .kamal/lock-shop 2>/dev/null || { mkdir -p .kamal && mkdir .kamal/lock-shop; }; } && printf '%s\\n' ${encoded} > .kamal/lock-shop/details`,
    );
    expect(lock.acquireLock(".kamal/lock-shop", details).policy.repeatable).toBe(false);
  });
  it("is read as Kamal reads it, and released only while it holds our details", () => {
    expect(lock.readLock(".kamal/lock-shop").text).toBe("base64 -d .kamal/lock-shop/details 2>/dev/null || test -d .kamal/lock-shop");
    expect(lock.releaseLock(".kamal/lock-shop", details).text).toBe(
      `if [ "$(cat .kamal/lock-shop/details 2>/dev/null)" = ${encoded} ]; then rm -rf .kamal/lock-shop; fi`,
    );
  });
  it("parses Kamal's own details and ours", () => {
    // What `kamal lock acquire -m "db migration"` writes (Kamal 2, lib/kamal/commands/lock.rb).
    const kamal = "Locked by: Jane Doe at 2026-11-23T16:59:01Z\nVersion: 3f2a9c1\nMessage: db migration";
    expect(lock.parseLockDetails(kamal)).toEqual({ holder: "Jane Doe", at: "2026-11-23T16:59:01Z", version: "3f2a9c1", message: "db migration" });
    expect(lock.parseLockDetails(lock.lockDetailsText(details))).toEqual(details);
    expect(lock.parseLockDetails("garbage")).toBeUndefined();
  });
});

describe("the operator's commands (pulumi-kamal details, logs, exec) and the audit log", () => {
  const cfg = appContainer.parse({
    hostName: "web-1", connection, service: "hey", role: "web", destination: "production", image: "r.example.com/hey", version: "v2",
    env: { RAILS_ENV: "production" }, volumes: ["/data/storage:/rails/storage"], options: { network: "kamal", publish: "8080:80", memory: "1g" },
  });

  it("prunes the service's dangling images as Kamal's prune does", () => {
    expect(ops.pruneDanglingImages("shop").text).toBe("docker image prune --force --filter label=service=shop");
  });
  it("runs a one-off container of the deployed version with the role's env file, or inside the running one", () => {
    expect(ops.execContainerName(cfg, "a1b2c3")).toBe("hey-web-production-exec-v2-a1b2c3");
    expect(ops.execCommand(cfg, ["bin/rails", "runner", "puts 'hi there'"], { name: "hey-web-production-exec-v2-a1b2c3", envFile: ".kamal/apps/hey-production/env/roles/web.env" }).text).toBe(
      "{ docker network inspect kamal >/dev/null 2>&1 || { i=0; until mkdir /tmp/.kamal-network-kamal.lock 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done;" +
        " docker network inspect kamal >/dev/null 2>&1 || docker network create kamal >/dev/null; r=$?; rmdir /tmp/.kamal-network-kamal.lock 2>/dev/null; [ $r -eq 0 ]; }; } &&" +
        " docker run --name hey-web-production-exec-v2-a1b2c3" +
        " --env KAMAL_CONTAINER_NAME=hey-web-production-exec-v2-a1b2c3 --env KAMAL_DESTINATION=production --env KAMAL_HOST=10.0.0.1 --env KAMAL_VERSION=v2 --env RAILS_ENV=production" +
        " --env-file .kamal/apps/hey-production/env/roles/web.env --volume /data/storage:/rails/storage" +
        " --label destination=production --label kamal.exec=v2 --label service=hey" +
        " --log-opt max-size=10m --memory 1g --network kamal --rm r.example.com/hey:v2 bin/rails runner 'puts '\\''hi there'\\'''",
    );
    expect(ops.execCommand(cfg, ["bin/rails", "console"], { name: "x", interactive: true, reuse: "hey-web-production-v2" }).text).toBe("docker exec --interactive --tty hey-web-production-v2 bin/rails console");
    expect(ops.execCommand(cfg, ["sh"], { name: "n", interactive: true }).text).toMatch(/ --log-opt max-size=10m --interactive --memory 1g --network kamal --rm --tty r\.example\.com\/hey:v2 sh$/);
  });

  it("reads logs with timestamps, and describes containers in one inspect", () => {
    expect(ops.logs("hey-web-production-v2").text).toBe("docker logs --timestamps hey-web-production-v2 2>&1");
    expect(ops.logs("hey-web-production-v2", { follow: true, since: "10m", lines: 10 }).text).toBe("docker logs --timestamps --since 10m --tail 10 --follow hey-web-production-v2 2>&1");
    expect(ops.describeContainers(["hey-web-production-v2", "traefik"]).text).toBe(
      "docker container inspect --format '{{.Name}}\t{{.State.Status}}\t{{if .State.Health}}{{.State.Health.Status}}{{end}}\t{{.State.StartedAt}}\t{{.Image}}\t{{.Config.Image}}\t{{index .Config.Labels \"version\"}}\t{{.RestartCount}}' hey-web-production-v2 traefik 2>/dev/null",
    );
    expect(ops.repoDigests("sha256:abc").text).toBe("docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' sha256:abc");
  });

  it("appends Kamal's audit line, quoted, and reads the tail", () => {
    const line = audit.auditLine({ recordedAt: "2026-12-02T10:00:00Z", performer: "ops@example.com", destination: "production", role: "web" }, "Started app version v2 (was v1)\nsecond line");
    expect(line).toBe("[2026-12-02T10:00:00Z] [ops@example.com] [production] [web] Started app version v2 (was v1) second line");
    expect(audit.auditLine({ recordedAt: "2026-12-02T10:00:00Z", performer: "ci" }, "Booted hey-db accessory")).toBe("[2026-12-02T10:00:00Z] [ci] Booted hey-db accessory");
    expect(audit.auditFile("hey", "production")).toBe(".kamal/hey-production-audit.log");
    expect(audit.auditFile("hey")).toBe(".kamal/hey-audit.log");
    expect(audit.auditFile("hey", undefined, "deploy/run")).toBe("deploy/run/hey-audit.log");
    expect(audit.recordAudit("deploy/run/hey-audit.log", "x").text).toBe("mkdir -p deploy/run && printf '%s\\n' x >> deploy/run/hey-audit.log");
    expect(audit.recordAudit(".kamal/hey-audit.log", "[t] [it's me] x").text).toBe("mkdir -p .kamal && printf '%s\\n' '[t] [it'\\''s me] x' >> .kamal/hey-audit.log");
    expect(audit.revealAudit(".kamal/hey-audit.log", 50).text).toBe("if [ -f .kamal/hey-audit.log ]; then tail -n 50 .kamal/hey-audit.log; fi");
    expect(audit.kamalTime(new Date("2026-12-02T10:00:00.123Z"))).toBe("2026-12-02T10:00:00Z");
  });
});

describe("bootstrap builders", () => {
  const facts = (o: Partial<boot.HostFacts> = {}): boot.HostFacts => ({ uid: 1001, user: "deploy", dockerCli: true, superuser: "sudo", inDockerGroup: false, init: "systemd", packageManager: "apt-get", os: "debian", runDir: false, ...o });

  it("probes with one read-only script and parses what it prints", () => {
    expect(boot.probeHost().text).toBe(
      [
        'echo "uid=$(id -u)"',
        'echo "user=$(id -un)"',
        "if command -v docker >/dev/null 2>&1; then echo cli=yes; fi",
        "if v=$(docker version --format '{{.Server.Version}}' 2>/dev/null); then echo \"engine=$v\"; fi",
        'if [ "$(id -u)" = 0 ]; then echo super=root;',
        "elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo super=sudo; if v=$(sudo -n docker version --format '{{.Server.Version}}' 2>/dev/null); then echo \"rootEngine=$v\"; fi;",
        "else echo super=none; fi",
        "if id -nG 2>/dev/null | tr ' ' '\\n' | grep -qx docker; then echo group=yes; fi",
        "if [ -d /run/systemd/system ]; then echo init=systemd; elif command -v rc-service >/dev/null 2>&1; then echo init=openrc; else echo init=sysv; fi",
        'for m in apt-get dnf yum zypper apk pacman; do if command -v $m >/dev/null 2>&1; then echo "pm=$m"; break; fi; done',
        '(if [ -r /etc/os-release ]; then . /etc/os-release && echo "os=$ID"; fi)',
        "if [ -d .kamal ]; then echo rundir=yes; fi",
      ].join("\n"),
    );
    expect(boot.probeHost("/srv/kamal run").text.split("\n").at(-1)).toBe("if [ -d '/srv/kamal run' ]; then echo rundir=yes; fi");
    expect(boot.createRunDir("/srv/kamal").text).toBe("mkdir -p /srv/kamal");
    expect(boot.parseFacts("uid=1001\nuser=deploy\ncli=yes\nsuper=sudo\nrootEngine=27.5.1\ninit=sysv\npm=apt-get\nos=debian\n")).toEqual(facts({ rootEngine: "27.5.1", init: "sysv" }));
    // Root: the engine it reaches is root's.
    expect(boot.parseFacts("uid=0\nuser=root\ncli=yes\nengine=27.5.1\nsuper=root\ngroup=yes\ninit=systemd\npm=dnf\nos=fedora\nrundir=yes\n")).toEqual(
      facts({ uid: 0, user: "root", engine: "27.5.1", rootEngine: "27.5.1", superuser: "root", inDockerGroup: true, packageManager: "dnf", os: "fedora", runDir: true }),
    );
    expect(boot.parseFacts("uid=1001\nuser=deploy\nsuper=none\ninit=openrc\npm=brew\n")).toEqual(facts({ dockerCli: false, superuser: "none", init: "openrc", packageManager: undefined, os: undefined }));
    expect(() => boot.parseFacts("Welcome!\n")).toThrow("the host did not say who the SSH user is (id -u, id -un)");
  });

  it("runs root's steps as root, through sudo -n, or refuses naming the user", () => {
    expect(boot.asRoot(facts({ superuser: "root", user: "root" }), Command.adHoc("service docker start")).text).toBe("service docker start");
    expect(boot.asRoot(facts(), Command.adHoc("usermod -aG docker deploy")).text).toBe("sudo -n sh -c 'usermod -aG docker deploy'");
    expect(boot.asRoot(facts(), Command.adHoc("echo 'a'")).text).toBe("sudo -n sh -c 'echo '\\''a'\\'''");
    expect(() => boot.asRoot(facts({ superuser: "none" }), Command.adHoc("service docker start"))).toThrow(
      "deploy is not root and cannot run sudo without a password: install Docker as root, or allow deploy passwordless sudo, and run bootstrap again",
    );
  });

  it("installs the distribution's own Docker package, or says there is none", () => {
    expect(boot.installDocker(facts())?.text).toBe("DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io");
    expect(boot.installDocker(facts({ packageManager: "dnf", os: "fedora" }))?.text).toBe("dnf install -y moby-engine");
    expect(boot.installDocker(facts({ packageManager: "dnf", os: "amzn" }))?.text).toBe("dnf install -y docker");
    expect(boot.installDocker(facts({ packageManager: "yum", os: "amzn" }))?.text).toBe("yum install -y docker");
    expect(boot.installDocker(facts({ packageManager: "zypper", os: "opensuse-leap" }))?.text).toBe("zypper --non-interactive install docker");
    expect(boot.installDocker(facts({ packageManager: "apk", os: "alpine" }))?.text).toBe("apk add --no-cache docker");
    expect(boot.installDocker(facts({ packageManager: "pacman", os: "arch" }))?.text).toBe("pacman -S --noconfirm --needed docker");
    expect(boot.installDocker(facts({ packageManager: "dnf", os: "rocky" }))?.text).toBeUndefined();
    expect(boot.installDocker(facts({ packageManager: undefined }))?.text).toBeUndefined();
  });

  it("starts the engine by the init system and waits for it; joins the group; creates the network and the run directory", () => {
    const wait = " && i=0 && until docker version >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge 300 ]; then echo 'dockerd did not answer within 60 s' >&2; exit 1; fi; sleep 0.2; done";
    expect(boot.startDocker("systemd").text).toBe(`systemctl enable --now docker${wait}`);
    expect(boot.startDocker("openrc").text).toBe(`rc-update add docker default && rc-service docker start${wait}`);
    expect(boot.startDocker("sysv").text).toBe(`service docker start${wait}`);
    expect(boot.joinDockerGroup("deploy").text).toBe("{ getent group docker >/dev/null || groupadd docker; } && if command -v usermod >/dev/null 2>&1; then usermod -aG docker deploy; else addgroup deploy docker; fi");
    expect(boot.joinDockerGroup("a b").text).toContain("usermod -aG docker 'a b'; else addgroup 'a b' docker;");
    expect(boot.networkExists("kamal").text).toBe("docker network inspect kamal >/dev/null 2>&1");
    expect(boot.createNetwork("kamal").text).toBe(docker.ensureNetwork("kamal").text);
    expect(boot.createRunDir().text).toBe("mkdir -p .kamal");
  });
});

describe("a host that is not ready for deploys", () => {
  it("says which bootstrap step fixes it, after the command's own error", async () => {
    const { RemoteCommandError } = await import("../../../provider/ssh/errors");
    expect(new RemoteCommandError("web-1", "docker login r.example.com", 127, undefined, "sh: 1: docker: not found", "").message).toBe(
      "ssh web-1: command failed with exit code 127: docker login r.example.com\n--- stderr (tail) ---\nsh: 1: docker: not found\n(Docker is not installed on this host (or not on the SSH user's PATH): pulumi-kamal bootstrap installs it)",
    );
    expect(new RemoteCommandError("web-1", "docker ps", 1, undefined, "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get …", "").message).toMatch(
      /\n\(the SSH user may not use the Docker engine: pulumi-kamal bootstrap adds it to the docker group\)$/,
    );
    expect(new RemoteCommandError("web-1", "docker ps", 1, undefined, "Error: No such container: x", "").message).toBe("ssh web-1: command failed with exit code 1: docker ps\n--- stderr (tail) ---\nError: No such container: x");
  });
});

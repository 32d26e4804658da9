/**
 * What makes a new server ready for deploys (`pulumi-kamal bootstrap`, Kamal's `kamal server
 * bootstrap`), as pure builders: a read-only probe says what the host has, and a step is
 * built only for what it lacks, so a second run changes nothing. Docker comes from the
 * distribution's own packages (Kamal pipes get.docker.com into sh; here no script from the
 * network runs as root), the engine is started and enabled by the host's init system, the SSH
 * user joins the docker group, then the shared networks and the run directory (~/.kamal).
 * What needs root runs through `sudo -n` when the SSH user is not root: never a password.
 */
import { Command } from "./command";
import { ensureNetwork } from "./docker";
import { shellJoin, shellQuote } from "./shell";
import { RUN_DIRECTORY } from "../config/values";

export type PackageManager = "apt-get" | "dnf" | "yum" | "zypper" | "apk" | "pacman";
export type InitSystem = "systemd" | "openrc" | "sysv";

/** What the probe found on a host. */
export interface HostFacts {
  uid: number;
  user: string;
  /** `docker` is on the SSH user's PATH. */
  dockerCli: boolean;
  /** The engine's version, when it answers the SSH user. */
  engine?: string;
  /** The engine's version, when it answers root (sudo -n for another user). */
  rootEngine?: string;
  /** How root's commands run: as the user itself, by sudo without a password, or not at all. */
  superuser: "root" | "sudo" | "none";
  inDockerGroup: boolean;
  init: InitSystem;
  packageManager?: PackageManager;
  /** /etc/os-release's ID. */
  os?: string;
  /** ~/.kamal exists. */
  runDir: boolean;
}

const VERSION = "--format '{{.Server.Version}}'";

/** One line per fact, `key=value`; reads only. */
export function probeHost(runDirectory = RUN_DIRECTORY): Command {
  const text = [
    'echo "uid=$(id -u)"',
    'echo "user=$(id -un)"',
    "if command -v docker >/dev/null 2>&1; then echo cli=yes; fi",
    `if v=$(docker version ${VERSION} 2>/dev/null); then echo "engine=$v"; fi`,
    'if [ "$(id -u)" = 0 ]; then echo super=root;',
    `elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo super=sudo; if v=$(sudo -n docker version ${VERSION} 2>/dev/null); then echo "rootEngine=$v"; fi;`,
    "else echo super=none; fi",
    "if id -nG 2>/dev/null | tr ' ' '\\n' | grep -qx docker; then echo group=yes; fi",
    "if [ -d /run/systemd/system ]; then echo init=systemd; elif command -v rc-service >/dev/null 2>&1; then echo init=openrc; else echo init=sysv; fi",
    "for m in apt-get dnf yum zypper apk pacman; do if command -v $m >/dev/null 2>&1; then echo \"pm=$m\"; break; fi; done",
    '(if [ -r /etc/os-release ]; then . /etc/os-release && echo "os=$ID"; fi)',
    `if [ -d ${shellQuote(runDirectory)} ]; then echo rundir=yes; fi`,
  ].join("\n");
  return Command.read(text, { engine: false });
}

const PACKAGE_MANAGERS: readonly string[] = ["apt-get", "dnf", "yum", "zypper", "apk", "pacman"];

export function parseFacts(stdout: string): HostFacts {
  const kv = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) kv.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const uid = Number(kv.get("uid"));
  const user = kv.get("user");
  if (!Number.isInteger(uid) || !user) throw new Error("the host did not say who the SSH user is (id -u, id -un)");
  const superuser = kv.get("super");
  const init = kv.get("init");
  const pm = kv.get("pm");
  return {
    uid,
    user,
    dockerCli: kv.get("cli") === "yes",
    engine: kv.get("engine") || undefined,
    rootEngine: (uid === 0 ? kv.get("engine") : kv.get("rootEngine")) || undefined,
    superuser: superuser === "root" || superuser === "sudo" ? superuser : "none",
    inDockerGroup: kv.get("group") === "yes",
    init: init === "systemd" || init === "openrc" ? init : "sysv",
    packageManager: pm && PACKAGE_MANAGERS.includes(pm) ? (pm as PackageManager) : undefined,
    os: kv.get("os") || undefined,
    runDir: kv.get("rundir") === "yes",
  };
}

/** A command as root: itself for root, through `sudo -n` (never a password prompt) otherwise. */
export function asRoot(f: Pick<HostFacts, "superuser" | "user">, command: Command): Command {
  if (f.superuser === "root") return command;
  if (f.superuser === "sudo") return command.map((text) => shellJoin(["sudo", "-n", "sh", "-c", text]));
  throw new Error(`${f.user} is not root and cannot run sudo without a password: install Docker as root, or allow ${f.user} passwordless sudo, and run bootstrap again`);
}

/** The distribution's Docker package, installed by its package manager (run again after a
 * reconnect: a package manager installs what is missing only); undefined when the
 * distribution has none (RHEL and its rebuilds ship Podman instead). */
export function installDocker(f: Pick<HostFacts, "packageManager" | "os">): Command | undefined {
  const text = installText(f);
  return text === undefined ? undefined : Command.change(text, { repeatable: true, engine: false });
}

function installText(f: Pick<HostFacts, "packageManager" | "os">): string | undefined {
  switch (f.packageManager) {
    case "apt-get":
      return "DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io";
    case "dnf":
      if (f.os === "fedora") return "dnf install -y moby-engine";
      if (f.os === "amzn") return "dnf install -y docker";
      return undefined;
    case "yum":
      return f.os === "amzn" ? "yum install -y docker" : undefined;
    case "zypper":
      return "zypper --non-interactive install docker";
    case "apk":
      return "apk add --no-cache docker";
    case "pacman":
      return "pacman -S --noconfirm --needed docker";
    default:
      return undefined;
  }
}

/** Per init system: how the engine is enabled at boot, then started now. */
const START: Record<InitSystem, { enable?: string; start: string }> = {
  systemd: { start: "systemctl enable --now docker" },
  openrc: { enable: "rc-update add docker default", start: "rc-service docker start" },
  sysv: { start: "service docker start" },
};

/** Starts the engine now and at every boot, then waits (60 s at most) until it answers. */
export function startDocker(init: InitSystem): Command {
  const { enable, start } = START[init];
  return Command.change(
    `${enable ? `${enable} && ` : ""}${start} && i=0 && until docker version >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge 300 ]; then echo 'dockerd did not answer within 60 s' >&2; exit 1; fi; sleep 0.2; done`,
    { repeatable: true, engine: false },
  );
}

/** The word a report shows for how the engine was started. */
export function startWord(init: InitSystem): string {
  return START[init].start;
}

/** The SSH user into the docker group (created if the package did not). Takes effect on the
 * user's next login: the caller connects again. */
export function joinDockerGroup(user: string): Command {
  const u = shellQuote(user);
  return Command.change(`{ getent group docker >/dev/null || groupadd docker; } && if command -v usermod >/dev/null 2>&1; then usermod -aG docker ${u}; else addgroup ${u} docker; fi`, { repeatable: true, engine: false });
}

/** Whether a network exists, as the SSH user: exit 0 or 1. */
export function networkExists(name: string): Command {
  return Command.read(`${shellJoin(["docker", "network", "inspect", name])} >/dev/null 2>&1`, { engine: false });
}

/** The network, unless it exists (the same idempotent create the run command uses). */
export function createNetwork(name: string): Command {
  return ensureNetwork(name);
}

/** The SSH user's run directory (locks, audit log, env files, proxy files). */
export function createRunDir(runDirectory = RUN_DIRECTORY): Command {
  return Command.change(["mkdir", "-p", runDirectory], { repeatable: true, engine: false });
}

/**
 * `pulumi-kamal bootstrap` (Kamal's `kamal server bootstrap`): new servers made ready for a
 * deploy, idempotently, each host's changes reported. Per host: Docker from the
 * distribution's packages when it is missing, the engine started (and enabled) by the host's
 * init system, the SSH user in the docker group (then logged in again, so that it takes
 * effect), the networks the deploy uses, and the run directory ~/.kamal. The builders are
 * provider/commands/bootstrap.ts; the SSH executor and host-key policy are the provider's.
 *
 * The hosts: those the stack has deployed, reached as the provider reaches them (from the
 * state); in a Kamal project (config/deploy.yml beside Pulumi.yaml, as `init` makes it) also
 * every host of the stack's destination not deployed yet, reached as its KamalApp will reach
 * them (deploy.yml's ssh settings and the stack config init wrote), so a stack can be
 * bootstrapped before its first deploy.
 */
import { Command } from "../provider/commands/command";
import { existsSync } from "node:fs";
import path from "node:path";
import { loadKamalConfig } from "../kamal/config";
import { asRoot, createNetwork, createRunDir, installDocker, joinDockerGroup, networkExists, parseFacts, probeHost, startDocker, startWord, type HostFacts } from "../provider/commands/bootstrap";
import { userNetworks } from "../provider/commands/docker";
import { RUN_DIRECTORY, type SshConnectionConfig } from "../provider/config/values";
import type { SshConnection } from "../provider/ssh/executor";
import { STACK_CONFIG } from "./programConfig";
import { kamalConnections, kamalHostNames, keyDataIn } from "./kamalHosts";
import { connect, eachHost, HostError } from "./remote";
import { projectOf, stackConfig } from "./pulumi";
import { loadDeployed } from "./stack";
import { UsageError } from "./usage";

export interface BootHost {
  /** The host as the config names it. */
  name: string;
  cfg: { hostName: string; connection: SshConnectionConfig };
  /** The user-defined networks the deploy runs containers on. */
  networks: string[];
  /** Kamal's run_directory (`.kamal` unless set). */
  runDirectory: string;
}

export interface BootStep {
  what: string;
  changed: boolean;
  detail: string;
}

export interface BootReport {
  host: string;
  user: string;
  steps: BootStep[];
}

type Options = Record<string, string | number | boolean | (string | number)[]> | undefined;
const networksOf = (options: Options[]) => [...new Set(options.flatMap((o) => userNetworks(o)))].sort();

/** The hosts to bootstrap, and where they were read from: the stack's deployed hosts (as
 * the provider reaches them), and in a Kamal project deploy.yml's hosts not deployed yet. */
export async function bootstrapHosts(opts: { cwd?: string; stack?: string }): Promise<{ stack: string; from: string; hosts: BootHost[] }> {
  const dir = path.resolve(opts.cwd ?? process.cwd());
  const d = await loadDeployed(opts);
  const byHost = new Map<string, BootHost>();
  for (const item of [...d.apps, ...d.accessories, ...d.traefiks]) {
    const h = byHost.get(item.cfg.hostName) ?? { name: item.cfg.hostName, cfg: { hostName: item.cfg.hostName, connection: item.cfg.connection }, networks: [], runDirectory: item.cfg.runDirectory };
    const nets = item.kind === "traefik" ? item.cfg.networks : userNetworks(item.cfg.options as Options);
    h.networks = [...new Set([...h.networks, ...nets])].sort();
    byHost.set(item.cfg.hostName, h);
  }
  const deployed = `the state of stack ${d.stack}`;
  const deployYml = path.join(dir, "config/deploy.yml");
  if (!existsSync(deployYml)) {
    if (!byHost.size) throw new UsageError(`stack ${d.stack} has deployed nothing yet, and ${dir} has no config/deploy.yml to read hosts from: bootstrap needs one of them`);
    return { stack: d.stack, from: deployed, hosts: [...byHost.values()] };
  }

  // deploy.yml's hosts, reached as the program init wrote reaches them.
  const project = projectOf(dir);
  if (!project) throw new UsageError(`no Pulumi project in ${dir}`);
  const config = stackConfig(dir, project, d.stack);
  const get = (k: string) => config[k];
  const cfg = loadKamalConfig({ file: deployYml, destination: get(STACK_CONFIG.destination) });
  const networks = [...new Set([...networksOf([...cfg.roles.map((r) => r.options), ...cfg.accessories.map((a) => a.options)]), ...(cfg.traefik?.networks ?? [])])].sort();
  const knownHosts = get(STACK_CONFIG.knownHosts);
  const names = kamalHostNames(cfg).filter((n) => !byHost.has(n));
  if (names.length && !knownHosts) {
    throw new UsageError(`stack ${d.stack} has no ${STACK_CONFIG.knownHosts} config (the hosts' keys) to reach ${names.join(", ")}: run pulumi-kamal init, or pulumi config set ${STACK_CONFIG.knownHosts} "$(cat verified_known_hosts)"`);
  }
  const fromConfig = names.length
    ? kamalConnections(cfg, { knownHosts, privateKeyPath: get(STACK_CONFIG.sshKeyPath), agent: get(STACK_CONFIG.sshAgent) === "true" ? true : undefined }, keyDataIn(dir, cfg)).filter((c) => names.includes(c.name))
    : [];
  for (const h of byHost.values()) h.networks = [...new Set([...h.networks, ...networks])].sort();
  const hosts = [...byHost.values(), ...fromConfig.map(({ name, connection }): BootHost => ({ name, cfg: { hostName: name, connection }, networks, runDirectory: cfg.runDirectory ?? RUN_DIRECTORY }))];
  const dest = cfg.destination ? ` (destination ${cfg.destination})` : "";
  const from = !byHost.size ? `config/deploy.yml${dest}` : fromConfig.length ? `${deployed} and config/deploy.yml${dest}` : deployed;
  return { stack: d.stack, from, hosts };
}

/** Bootstraps every host at once; a host that fails is named with its step, the others go on. */
export async function bootstrap(hosts: BootHost[], progress: (line: string) => void): Promise<{ reports: BootReport[]; errors: HostError[] }> {
  const { results, errors } = await eachHost(hosts, "bootstrapping", (h) => bootstrapHost(h, progress));
  return { reports: results.filter((r): r is BootReport => !!r), errors };
}

async function bootstrapHost(h: BootHost, progress: (line: string) => void): Promise<BootReport> {
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw e instanceof HostError ? e : new HostError(h.name, what, e);
    }
  };
  let conn: SshConnection = await step("connecting", () => connect(h.cfg.connection));
  const probe = async () => parseFacts((await conn.exec(probeHost(h.runDirectory))).stdout);
  let f: HostFacts = await step("looking at the host", probe);
  const steps: BootStep[] = [];
  const asRootOn = (command: Command) => asRoot(f, command);

  // Docker, from the distribution's packages.
  if (!f.dockerCli) {
    await step("installing Docker", async () => {
      const install = installDocker(f);
      if (!install) throw new Error(`no Docker package is known for ${f.os ?? "this system"}${f.packageManager ? ` (${f.packageManager})` : " (no package manager found)"}: install Docker Engine (docs.docker.com/engine/install), then run bootstrap again`);
      progress(`${h.name}: installing Docker (${f.packageManager})…`);
      await conn.exec(asRootOn(install), { timeoutMs: 900_000 });
      f = await probe();
      if (!f.dockerCli) throw new Error("the package installed, but docker is still not on the SSH user's PATH");
    });
    steps.push({ what: "Docker", changed: true, detail: `installed by ${f.packageManager}` });
  } else {
    steps.push({ what: "Docker", changed: false, detail: "installed" });
  }

  // The engine, started now and at boot.
  if (!f.engine && !f.rootEngine) {
    await step("starting the Docker engine", async () => {
      if (f.superuser === "none") throw new Error(`the engine does not answer ${f.user}, and ${f.user} is not root and cannot sudo without a password to start it`);
      progress(`${h.name}: starting the Docker engine (${startWord(f.init)})…`);
      await conn.exec(asRootOn(startDocker(f.init)), { timeoutMs: 120_000 });
      f = await probe();
      if (!f.engine && !f.rootEngine) throw new Error(`${startWord(f.init)} succeeded, but the engine does not answer`);
    });
    steps.push({ what: "engine", changed: true, detail: `started (${startWord(f.init)}): Docker ${f.engine ?? f.rootEngine}` });
  } else {
    steps.push({ what: "engine", changed: false, detail: `running: Docker ${f.engine ?? f.rootEngine}` });
  }

  // The SSH user reaches the engine without sudo (the provider's commands run as it).
  if (!f.engine) {
    const added = await step("adding the SSH user to the docker group", async () => {
      let joined = false;
      if (!f.inDockerGroup) {
        await conn.exec(asRootOn(joinDockerGroup(f.user)));
        joined = true;
      }
      // Groups are read at login: a new connection has the new one.
      conn.close();
      conn = await connect(h.cfg.connection);
      f = await probe();
      if (!f.engine) throw new Error(`${f.user} is in the docker group, but the engine still refuses it: is its socket group-owned by docker? (ls -l /var/run/docker.sock)`);
      return joined;
    });
    steps.push({ what: "docker group", changed: added, detail: added ? `${f.user} added (logged in again)` : `${f.user} logged in again` });
  } else {
    steps.push({ what: "docker group", changed: false, detail: f.uid === 0 ? "not needed (root)" : f.inDockerGroup ? `${f.user} is in it` : `${f.user} reaches the engine` });
  }

  for (const n of h.networks) {
    const created = await step(`creating the network ${n}`, async () => {
      if ((await conn.run(networkExists(n))).code === 0) return false;
      await conn.exec(createNetwork(n));
      return true;
    });
    steps.push({ what: `network ${n}`, changed: created, detail: created ? "created" : "present" });
  }

  if (!f.runDir) {
    await step("creating the run directory", () => conn.exec(createRunDir(h.runDirectory)));
    steps.push({ what: `run directory ${shownRunDirectory(h.runDirectory)}`, changed: true, detail: "created" });
  } else {
    steps.push({ what: `run directory ${shownRunDirectory(h.runDirectory)}`, changed: false, detail: "present" });
  }
  return { host: h.name, user: f.user, steps };
}

/** Per host: what changed, then what was already there. */
export function formatBootstrap(reports: BootReport[]): string {
  const width = Math.max(...reports.flatMap((r) => r.steps.map((s) => s.what.length)));
  return reports
    .map((r) => {
      const changed = r.steps.filter((s) => s.changed).length;
      const head = `${r.host} (${r.user}): ${changed ? `${changed} change${changed === 1 ? "" : "s"}` : "ready, nothing to change"}`;
      return [head, ...r.steps.map((s) => `  ${s.changed ? "+" : "="} ${s.what.padEnd(width)}  ${s.detail}`)].join("\n");
    })
    .join("\n");
}

/** The run directory as a user reads it: in the home unless absolute. */
function shownRunDirectory(dir: string): string {
  return dir.startsWith("/") ? dir : `~/${dir}`;
}

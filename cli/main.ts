#!/usr/bin/env node
/**
 * `pulumi-kamal`: Kamal's commands over the Pulumi engine and a stack's state, as Kamal
 * users know them (`kamal init`, `server bootstrap`, `deploy`, `rollback`, `details`, `app
 * logs`, `app exec`, `audit`, `lock`). Hosts, roles, containers and SSH settings come from
 * the stack's state (and, for a Kamal project's hosts not deployed yet, from deploy.yml); the
 * provider's own SSH executor, host-key policy and redaction do the rest.
 *
 * Exit codes: 0 done; 1 a host failed (the message names it and the step); 2 a usage or
 * setup problem; 3 the deploy lock is held; `exec` exits with the command's own code.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { LogSource } from "./logs";
import type { HostError } from "./remote";
import type { Deployed } from "./stack";
import { opened } from "./lifecycle";
import { kamalGlobalOptions } from "./aliases";
import { SECRETS_USAGE, secrets } from "./secrets";
import { shellSplit } from "../provider/commands/shell";
import { EngineError, LockRefused, UsageError } from "./usage";

// Each command loads only the modules it uses (every module costs start-up time): a deploy
// starts without the SSH client, deploy.yml's loader or the Automation API.
const engine = () => import("./engine");
const select = () => import("./select");
const hostCommands = () => import("./hostCommands");

const GLOBAL = `Stack options (every command):
  -s, --stack NAME     the stack (default: the project's selected stack); -d DEST (Kamal's) is the destination's stack
  -C, --cwd DIR        the Pulumi project's directory (default: this one)
      --service NAME   one service, when the stack has several
  -h, --help           this help`;

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run: (values: Record<string, string | boolean | string[] | undefined>, positionals: string[]) => Promise<number>;
  /** Takes its arguments as they are (Kamal's own option syntax), after the stack options. */
  raw?: boolean;
}

const stackOptions = {
  stack: { type: "string", short: "s" },
  cwd: { type: "string", short: "C" },
  service: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const out = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
const usage = (message: string): never => {
  throw new UsageError(message);
};
const str = (v: unknown) => (typeof v === "string" ? v : undefined);

async function load(values: Record<string, unknown>): Promise<Deployed> {
  return (await import("./stack")).loadDeployed({ cwd: str(values.cwd), stack: str(values.stack) });
}

/** Failures on some hosts: each said on its own line; exit 1. */
function reportErrors(errors: HostError[]): number {
  for (const e of errors) process.stderr.write(`error: ${e.message}\n`);
  return errors.length ? 1 : 0;
}

function intOption(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, e.g. --${name} 100`);
  return n;
}

/** Ctrl-C ends a follow or a command cleanly (the remote side gets SIGINT, then the channel closes). */
function interrupt(): AbortSignal {
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  process.once("SIGTERM", () => ac.abort());
  return ac.signal;
}

/** Where an update runs: the project and stack, without reading the state. */
const engineOf = async (v: Record<string, unknown>) => {
  const { dir, stack } = await (await import("./stack")).stackOf({ cwd: str(v.cwd), stack: str(v.stack) });
  return { dir, stack, write: (l: string) => out(l) };
};
const versionOptions = { version: { type: "string" }, "version-key": { type: "string" }, "skip-push": { type: "boolean", short: "P" } } as const;
const VERSION_HELP = `      --version V        the version (image tag) to run (default: the git commit, as Kamal's)
      --version-key K    the stack config key the program reads it from (default: version)
  -P, --skip-push        no build: deploy the image the registry has for the version (Kamal's --skip-push)`;
const deployOptions = (v: Record<string, unknown>) => ({ version: str(v.version), versionKey: str(v["version-key"]), skipPush: !!v["skip-push"] });

/** Bootstraps the stack's hosts (or one), reporting per host; exit 1 if one failed. */
async function runBootstrap(v: Record<string, unknown>, o: { host?: string; json?: boolean }): Promise<number> {
  const { bootstrap, bootstrapHosts, formatBootstrap } = await import("./bootstrap");
  const { stack, from, hosts } = await bootstrapHosts({ cwd: str(v.cwd), stack: str(v.stack) });
  const chosen = hosts.filter((h) => !o.host || h.name === o.host || h.cfg.connection.host === o.host);
  if (!chosen.length) throw new UsageError(`stack ${stack} has no host ${o.host} (hosts: ${hosts.map((h) => h.name).join(", ")})`);
  if (!o.json) out(`Bootstrapping ${chosen.map((h) => h.name).join(", ")} (stack ${stack}, hosts from ${from})`);
  const { reports, errors } = await bootstrap(chosen, o.json ? () => {} : out);
  if (reports.length) out(o.json ? JSON.stringify({ stack, hosts: reports }, null, 2) : formatBootstrap(reports));
  return reportErrors(errors);
}

/** The services a maintenance switch applies to: --service, else every one in the stack. */
async function servicesOf(d: Deployed, v: Record<string, unknown>): Promise<string[]> {
  const { selectApps } = await select();
  return [...new Set(selectApps(d, { service: str(v.service) }).map((a) => a.cfg.service))];
}

const logsOptions = { host: { type: "string" }, follow: { type: "boolean", short: "f" }, since: { type: "string" }, lines: { type: "string", short: "n" }, grep: { type: "string" } } as const;

const COMMANDS: Record<string, Command> = {
  init: {
    summary: "make this Kamal project (config/deploy.yml, destinations, .kamal/secrets) a Pulumi project: Pulumi.yaml, a KamalApp program, a stack per destination",
    usage: `pulumi-kamal init [--known-hosts FILE | --yes] [--ssh-key PATH]
      --known-hosts FILE  take the hosts' keys from this file (verified out of band)
      --yes               trust the keys the hosts present (printed) without asking
      --ssh-key PATH      the private key to log in with (default: the ssh-agent, else ~/.ssh/id_ed25519)`,
    options: { "known-hosts": { type: "string" }, yes: { type: "boolean", short: "y" }, "ssh-key": { type: "string" } },
    async run(v) {
      const { init, terminalAsk } = await import("./init");
      await init({ dir: str(v.cwd) ?? process.cwd(), knownHosts: str(v["known-hosts"]), yes: !!v.yes, sshKey: str(v["ssh-key"]), write: out, ask: terminalAsk() });
      return 0;
    },
  },
  bootstrap: {
    summary: "make new servers ready: Docker installed (the distribution's package) and running, the SSH user in the docker group, the networks, ~/.kamal",
    usage: `pulumi-kamal bootstrap [--host H] [--json]
  --host H   one host (default: every host of the stack: deploy.yml's, else the deployed ones)
  --json     the report for scripts`,
    options: { host: { type: "string" }, json: { type: "boolean" } },
    run: (v) => runBootstrap(v, { host: str(v.host), json: !!v.json }),
  },
  setup: {
    summary: "kamal setup: bootstrap the hosts, then deploy (accessories, Traefik and the apps)",
    usage: `pulumi-kamal setup [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      const boot = await runBootstrap(v, {});
      if (boot) return boot;
      await (await engine()).deploy(await engineOf(v), deployOptions(v));
      return 0;
    },
  },
  deploy: {
    summary: "kamal deploy: the image built from the current commit and pushed, then on every host, health-gated, zero downtime",
    usage: `pulumi-kamal deploy [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      await (await engine()).deploy(await engineOf(v), deployOptions(v));
      return 0;
    },
  },
  redeploy: {
    summary: "deploy the apps only (the image built and pushed, containers, env files, release, hooks): not accessories or Traefik",
    usage: `pulumi-kamal redeploy [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      await (await engine()).redeploy(await engineOf(v), deployOptions(v));
      return 0;
    },
  },
  build: {
    summary: "kamal build: push (build the current commit's image and push it), pull (onto every app host, by digest), details (the builder)",
    usage: `pulumi-kamal build push [--version V] | pull | details
  push       the stack's image built from the commit (or --version) and pushed; nothing deployed
  pull       the built image pulled onto every app host, by its digest
  details    which builder builds it; Docker's contexts and buildx builders`,
    options: { version: { type: "string" }, "version-key": { type: "string" } },
    async run(v, pos) {
      const [sub, ...rest] = pos;
      if (!sub || rest.length || !["push", "pull", "details"].includes(sub)) throw new UsageError("build needs one of: push, pull, details");
      const [o, d, { buildDetails, buildPull, buildPush }] = await Promise.all([engineOf(v), load(v), import("./build")]);
      if (sub === "push") {
        await buildPush(o, d, { version: str(v.version), versionKey: str(v["version-key"]), service: str(v.service) });
        return 0;
      }
      if (sub === "pull") return reportErrors((await buildPull(d, out)).errors);
      await buildDetails(d, out);
      return 0;
    },
  },
  rollback: {
    summary: "back to VERSION, whose stopped containers the hosts kept (no pull)",
    usage: "pulumi-kamal rollback VERSION [--version-key K]",
    options: { "version-key": { type: "string" } },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError("rollback needs the version to go back to: pulumi-kamal rollback VERSION (pulumi-kamal details shows what runs)");
      const [o, d] = await Promise.all([engineOf(v), load(v)]);
      await (await engine()).rollback(o, d, pos[0], { versionKey: str(v["version-key"]) });
      return 0;
    },
  },
  preview: {
    summary: "pulumi preview --diff: what a deploy would change, on which host",
    usage: `pulumi-kamal preview [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      await (await engine()).preview(await engineOf(v), deployOptions(v));
      return 0;
    },
  },
  maintenance: {
    summary: "Traefik answers 503 with the maintenance page; the containers keep running (live undoes it)",
    usage: "pulumi-kamal maintenance [--message M] [--service S]\n  -m, --message M   shown on the page",
    options: { message: { type: "string", short: "m" } },
    async run(v) {
      const [o, d] = await Promise.all([engineOf(v), load(v)]);
      await (await engine()).maintenance(o, d, await servicesOf(d, v), { message: str(v.message) });
      return 0;
    },
  },
  live: {
    summary: "out of maintenance mode: Traefik routes to the containers again",
    usage: "pulumi-kamal live [--service S]",
    options: {},
    async run(v) {
      const [o, d] = await Promise.all([engineOf(v), load(v)]);
      await (await engine()).maintenance(o, d, await servicesOf(d, v), false);
      return 0;
    },
  },
  details: {
    summary: "what runs where: per role and host the version, container, status, health, uptime and image digest; accessories; Traefik",
    usage: "pulumi-kamal details [--host H] [--json]",
    options: { host: { type: "string" }, json: { type: "boolean" } },
    async run(v) {
      const [d, { selectApps }, { details, formatDetails }] = await Promise.all([load(v), select(), import("./details")]);
      const scoped = { ...d, apps: v.service ? selectApps(d, { service: str(v.service) }) : d.apps, accessories: v.service ? d.accessories.filter((a) => a.cfg.service === v.service) : d.accessories };
      const { rows, errors } = await details(scoped, { host: str(v.host) });
      out(v.json ? JSON.stringify({ stack: d.stack, containers: rows }, null, 2) : formatDetails(d, rows));
      return reportErrors(errors);
    },
  },
  logs: {
    summary: "the containers' output from every host at once, each line prefixed with its host",
    usage: `pulumi-kamal logs [ROLE|ACCESSORY|traefik] [--host H] [-f] [--since T] [-n N] [--grep RE]
  ROLE             one role's containers (default: every role's)
  ACCESSORY        an accessory by name; traefik: each host's Traefik
  -f, --follow     keep following until Ctrl-C
      --since T    from this time on: "10m", "2h", "2026-12-02T10:00:00Z"
  -n, --lines N    the last N lines of each (default 100; 10 with --follow)
      --grep RE    only lines matching this regular expression`,
    options: logsOptions,
    async run(v, pos) {
      if (pos.length > 1) throw new UsageError(`logs takes one role, accessory or "traefik", not ${pos.join(" ")}`);
      const [d, { selectAccessories, selectApps }, { streamLogs }] = await Promise.all([load(v), select(), import("./logs")]);
      const what = pos[0];
      const host = str(v.host);
      let sources: LogSource[];
      if (what === "traefik") {
        sources = d.traefiks.filter((t) => !host || t.cfg.hostName === host || t.cfg.connection.host === host).map((t) => ({ cfg: t.cfg, container: t.container, label: "traefik" }));
      } else if (what && selectAccessories(d, what).length) {
        sources = selectAccessories(d, what, host).map((a) => ({ cfg: a.cfg, container: a.container, label: a.cfg.name }));
      } else {
        const apps = selectApps(d, { service: str(v.service), role: what, host });
        const labelled = new Set(apps.map((a) => `${a.cfg.service}/${a.cfg.role}`)).size > 1;
        sources = apps.map((a) => ({ cfg: a.cfg, container: a.container, label: labelled ? a.cfg.role : undefined }));
      }
      if (!sources.length) throw new UsageError(`nothing of stack ${d.stack} matches${what ? ` ${what}` : ""}${host ? ` on ${host}` : ""}`);
      let grep: RegExp | undefined;
      try {
        grep = str(v.grep) !== undefined ? new RegExp(str(v.grep)!) : undefined;
      } catch (e) {
        throw new UsageError(`--grep is not a regular expression: ${(e as Error).message}`);
      }
      const follow = !!v.follow;
      const errors = await streamLogs(sources, { follow, since: str(v.since), lines: intOption(v.lines, "lines") ?? (follow ? 10 : str(v.since) ? undefined : 100), grep, signal: follow ? interrupt() : undefined }, out);
      return reportErrors(errors);
    },
  },
  exec: {
    summary: "a command in a one-off container of the deployed version (the role's env and secrets), or in the running one",
    usage: `pulumi-kamal exec [--role R] [--host H] [-i] [--reuse] [--detach] [-e KEY=VALUE]... -- CMD [ARG...]
  --role R           the role (default: web, else the first)
  --host H           one host (default: every host of the role; with -i, the first)
  -i, --interactive  a terminal: a console, a shell
      --reuse        inside the running container (docker exec) instead of a new one
      --detach       a one-off container left running in the background (kept after it exits)
  -e KEY=VALUE       a variable for the command (repeat for several)
  One CMD argument is a command line, as in Kamal: "bin/rails runner 'puts 1'"`,
    options: { role: { type: "string" }, host: { type: "string" }, interactive: { type: "boolean", short: "i" }, reuse: { type: "boolean" }, env: { type: "string", short: "e", multiple: true }, detach: { type: "boolean" } },
    async run(v, pos) {
      if (!pos.length) throw new UsageError("exec needs a command: pulumi-kamal exec -- bin/rails console");
      if (v.detach && (v.interactive || v.reuse)) throw new UsageError(`Detach is not compatible with ${[v.interactive && "interactive", v.reuse && "reuse"].filter(Boolean).join(" or ")}`);
      const env = Object.fromEntries(((v.env as string[] | undefined) ?? []).map((e) => (/^[A-Za-z_][A-Za-z0-9_]*=/.test(e) ? [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)] : usage(`-e takes KEY=VALUE, not ${e}`))));
      // One argument is a command line, as Kamal's (split like a shell would, never interpreted).
      if (pos.length === 1 && /\s/.test(pos[0])) pos = shellSplit(pos[0]);
      const [d, { primaryRole, selectApps }, { execInteractive, execOn }] = await Promise.all([load(v), select(), import("./exec")]);
      const inService = selectApps(d, { service: str(v.service) });
      const role = str(v.role) ?? primaryRole(inService);
      let apps = selectApps(d, { service: str(v.service), role, host: str(v.host) });
      if (new Set(apps.map((a) => a.cfg.service)).size > 1) throw new UsageError(`stack ${d.stack} has several services with a ${role} role: give --service`);
      const signal = interrupt();
      if (v.interactive) {
        apps = apps.slice(0, 1);
        return await execInteractive(apps[0], { cmd: pos, reuse: !!v.reuse, env, signal });
      }
      const r = await execOn(apps, { cmd: pos, reuse: !!v.reuse, env, detach: !!v.detach, signal }, (t) => process.stdout.write(t), (t) => process.stderr.write(t));
      return reportErrors(r.errors) || r.code;
    },
  },
  audit: {
    summary: "the last lines of each host's audit log (deploys, rollbacks, releases, locks, execs)",
    usage: "pulumi-kamal audit [--host H] [-n N]\n  -n, --lines N   lines per host (default 50)",
    options: { host: { type: "string" }, lines: { type: "string", short: "n" } },
    async run(v) {
      const [d, { scopesOnHosts, selectApps }, { auditTail }] = await Promise.all([load(v), select(), import("./lock")]);
      const scopes = scopesOnHosts(selectApps(d, { service: str(v.service), host: str(v.host) }));
      const r = await auditTail(scopes, intOption(v.lines, "lines") ?? 50);
      if (r.lines.length) out(r.lines.join("\n"));
      return reportErrors(r.errors);
    },
  },
  lock: {
    summary: "the deploy lock on the service's hosts: status, acquire -m MSG, release",
    usage: `pulumi-kamal lock status | acquire -m MSG | release [--host H]
  status           who holds it on each host, since when, why
  acquire -m MSG   take it on every host (or on none): deploys wait, then refuse
  release          remove it wherever it is held`,
    options: { host: { type: "string" }, message: { type: "string", short: "m" } },
    async run(v, pos) {
      const [sub, ...rest] = pos;
      if (!sub || rest.length || !["status", "acquire", "release"].includes(sub)) throw new UsageError("lock needs one of: status, acquire -m MSG, release");
      const [d, { scopesOnHosts, selectApps }, { formatLock, lockAcquire, lockRelease, lockStatus }] = await Promise.all([load(v), select(), import("./lock")]);
      const scopes = scopesOnHosts(selectApps(d, { service: str(v.service), host: str(v.host) }));
      if (!scopes.length) throw new UsageError(`stack ${d.stack} has no app containers, so no deploy lock`);
      if (sub === "status") {
        const r = await lockStatus(scopes);
        out(r.states.map(formatLock).join("\n"));
        return reportErrors(r.errors);
      }
      if (sub === "acquire") {
        const message = str(v.message);
        if (!message) throw new UsageError('lock acquire needs a message: -m "reason"');
        const taken = await lockAcquire(scopes, message);
        out(taken.map((s) => `${s.host}: acquired the deploy lock (${s.dir})`).join("\n"));
        return 0;
      }
      const r = await lockRelease(scopes);
      out(r.released.length ? r.released.map((h) => `${h}: released the deploy lock`).join("\n") : "There is no deploy lock");
      return reportErrors(r.errors);
    },
  },
  accessory: {
    summary: "kamal accessory: boot|reboot (apply deploy.yml's changes: a deploy leaves running accessories as they are), start|stop|restart|details|exec|logs",
    usage: `pulumi-kamal accessory boot|reboot|start|stop|restart|details NAME|all [--host H] | exec NAME -- CMD | logs NAME [logs options]
  boot NAME     boot it if it is not deployed, or apply its pending changes
  reboot NAME   apply its changes and run its container again (stopped, removed, run; its data kept)
  start|stop|restart|details NAME   its container on each host; exec NAME -- CMD   a command inside it`,
    options: logsOptions,
    async run(v, pos) {
      const [sub, name, ...rest] = pos;
      if (!sub || !name) throw new UsageError("accessory needs a command and a name (or all): pulumi-kamal accessory reboot db");
      if (sub === "logs") return COMMANDS.logs.run(v, [name]);
      if (sub === "boot" || sub === "reboot") {
        const [o, d] = await Promise.all([engineOf(v), load(v)]);
        await (await engine()).accessory(o, d, sub, [name, ...rest]);
        return 0;
      }
      return reportErrors(await (await hostCommands()).accessory(sub, await load(v), name, str(v.host), rest, out));
    },
  },
  app: {
    summary: "kamal app: stop|start the app's containers, containers|images on the hosts, version running",
    usage: "pulumi-kamal app stop|start|containers|images|version [--role R] [--host H]",
    options: { role: { type: "string" }, host: { type: "string" } },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError("app needs one of: stop, start, containers, images, version");
      return reportErrors(await (await hostCommands()).app(pos[0], await load(v), { service: str(v.service), role: str(v.role), host: str(v.host) }, out));
    },
  },
  proxy: {
    summary: "kamal proxy (Traefik here): start|stop|restart|details, logs",
    usage: "pulumi-kamal proxy start|stop|restart|details|logs [--host H] [logs options]",
    options: logsOptions,
    async run(v, pos) {
      if (pos[0] === "logs") return COMMANDS.logs.run(v, ["traefik"]);
      if (pos.length !== 1) throw new UsageError("proxy needs one of: start, stop, restart, details, logs");
      return reportErrors(await (await hostCommands()).proxy(pos[0], await load(v), str(v.host), out));
    },
  },
  server: {
    summary: "kamal server exec: a command on every host of the stack (or one), output prefixed with the host",
    usage: "pulumi-kamal server exec [--host H] -- CMD [ARG...]",
    options: { host: { type: "string" } },
    async run(v, pos) {
      const [sub, ...cmd] = pos;
      if (sub !== "exec") throw new UsageError('server needs exec: pulumi-kamal server exec -- "df -h /"');
      return reportErrors(await (await hostCommands()).serverExec(await load(v), str(v.host), cmd, out));
    },
  },
  registry: {
    summary: "kamal registry login|logout on every app host (the password on stdin)",
    usage: "pulumi-kamal registry login|logout [--host H]",
    options: { host: { type: "string" } },
    async run(v, pos) {
      return reportErrors(await (await hostCommands()).registry(pos[0] ?? "", await load(v), str(v.host), out));
    },
  },
  secrets: {
    summary: "kamal secrets: fetch from a vault (1Password, Bitwarden, AWS…), extract one, print the project's",
    usage: SECRETS_USAGE,
    options: {},
    raw: true,
    async run(v, pos) {
      return secrets(pos, str(v.cwd) ?? process.cwd(), out);
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    "pulumi-kamal: Kamal's commands (init, deploy, rollback, details, logs, exec, lock…) over the Pulumi engine and a stack's state",
    "",
    "Usage: pulumi-kamal COMMAND [options]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    "",
    GLOBAL,
    "",
    "pulumi-kamal COMMAND --help shows a command's options.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    out(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    // deploy.yml's aliases, as Kamal runs them.
    const cwdAt = args.findIndex((a) => a === "-C" || a === "--cwd");
    const alias = await (await import("./aliases")).aliasCommandLine(cwdAt >= 0 ? args[cwdAt + 1] : process.cwd(), name, args).catch((e: Error) => (process.stderr.write(`pulumi-kamal: ${e.message}\n`), null));
    if (alias === null) return 2;
    if (alias && alias[0] !== name) return main(alias);
    process.stderr.write(`pulumi-kamal: no command "${name}" (commands: ${Object.keys(COMMANDS).join(", ")}); pulumi-kamal --help\n`);
    return 2;
  }
  try {
    // Everything after "--" is the remote command's, untouched.
    const dash = args.indexOf("--");
    const own = dash >= 0 ? args.slice(0, dash) : args;
    if (command.raw) {
      if (own.includes("--help")) return (out(`${command.usage}\n\n${command.summary}`), 0);
      const cwdAt = own.findIndex((a) => a === "-C" || a === "--cwd");
      const cwd = cwdAt >= 0 ? own[cwdAt + 1] : undefined;
      return await command.run({ cwd }, cwdAt >= 0 ? [...own.slice(0, cwdAt), ...own.slice(cwdAt + 2)] : own);
    }
    const parsed = parseArgs({ args: kamalGlobalOptions(own, "role" in command.options), options: { ...stackOptions, ...command.options }, allowPositionals: true, strict: true });
    if (parsed.values.help) {
      out(`${command.usage}\n\n${command.summary}\n\n${GLOBAL}`);
      return 0;
    }
    const positionals = dash >= 0 ? [...parsed.positionals, ...args.slice(dash + 1)] : parsed.positionals;
    return await command.run(parsed.values as Record<string, string | boolean | undefined>, positionals);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UsageError || err.code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`pulumi-kamal ${name}: ${err.message}\n`);
      return 2;
    }
    if (e instanceof EngineError) {
      process.stderr.write(`pulumi-kamal ${name}: failed:\n${err.message}\n`);
      return 1;
    }
    if (e instanceof LockRefused) {
      process.stderr.write(`pulumi-kamal ${name}: ${err.message}\n`);
      return 3;
    }
    process.stderr.write(`pulumi-kamal ${name}: ${err.message}\n`);
    return 1;
  } finally {
    if (opened.ssh) (await import("./remote")).closeAll();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`pulumi-kamal: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}

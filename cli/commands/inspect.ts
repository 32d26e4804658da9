/**
 * The commands that look at and act inside what runs: details, logs, exec, audit, lock.
 */
import type { LogSource } from "../logs";
import { shellSplit } from "../../provider/commands/shell";
import { UsageError } from "../usage";
import { type Command, intOption, interrupt, load, logsOptions, out, reportErrors, select, str, usage } from "./common";

export const inspectCommands: Record<string, Command> = {
  details: {
    summary: "what runs where: per role and host the version, container, status, health, uptime and image digest; accessories; Traefik",
    usage: "pulumi-kamal details [--host H] [--json]",
    options: { host: { type: "string" }, json: { type: "boolean" } },
    async run(v) {
      const [d, { selectApps }, { details, formatDetails }] = await Promise.all([load(v), select(), import("../details")]);
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
      const [d, { selectAccessories, selectApps }, { streamLogs }] = await Promise.all([load(v), select(), import("../logs")]);
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
    usage: `pulumi-kamal exec [--role R] [--host H] [-i] [--reuse] [--detach] [--raw] [-e KEY=VALUE]... -- CMD [ARG...]
  --role R           the role (default: web, else the first)
  --host H           one host (default: every host of the role; with -i, the first)
  -i, --interactive  a terminal: a console, a shell
      --reuse        inside the running container (docker exec) instead of a new one
      --detach       a one-off container left running in the background (kept after it exits)
  -e KEY=VALUE       a variable for the command (repeat for several)
      --raw          each host's output as it is, not prefixed with the host
  One CMD argument is a command line, as in Kamal: "bin/rails runner 'puts 1'"`,
    options: { role: { type: "string" }, host: { type: "string" }, interactive: { type: "boolean", short: "i" }, reuse: { type: "boolean" }, env: { type: "string", short: "e", multiple: true }, detach: { type: "boolean" }, raw: { type: "boolean" } },
    async run(v, pos) {
      if (!pos.length) throw new UsageError("exec needs a command: pulumi-kamal exec -- bin/rails console");
      if (v.detach && (v.interactive || v.reuse)) throw new UsageError(`Detach is not compatible with ${[v.interactive && "interactive", v.reuse && "reuse"].filter(Boolean).join(" or ")}`);
      if (v.raw && (v.interactive || v.detach)) throw new UsageError(`Raw is not compatible with ${[v.interactive && "interactive", v.detach && "detach"].filter(Boolean).join(" or ")}`);
      const env = Object.fromEntries(((v.env as string[] | undefined) ?? []).map((e) => (/^[A-Za-z_][A-Za-z0-9_]*=/.test(e) ? [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)] : usage(`-e takes KEY=VALUE, not ${e}`))));
      // One argument is a command line, as Kamal's (split like a shell would, never interpreted).
      if (pos.length === 1 && /\s/.test(pos[0])) pos = shellSplit(pos[0]);
      const [d, { primaryRole, selectApps }, { execInteractive, execOn }] = await Promise.all([load(v), select(), import("../exec")]);
      const inService = selectApps(d, { service: str(v.service) });
      const role = str(v.role) ?? primaryRole(inService);
      let apps = selectApps(d, { service: str(v.service), role, host: str(v.host) });
      if (new Set(apps.map((a) => a.cfg.service)).size > 1) throw new UsageError(`stack ${d.stack} has several services with a ${role} role: give --service`);
      const signal = interrupt();
      if (v.interactive) {
        apps = apps.slice(0, 1);
        return await execInteractive(apps[0], { cmd: pos, reuse: !!v.reuse, env, signal });
      }
      const r = await execOn(apps, { cmd: pos, reuse: !!v.reuse, env, detach: !!v.detach, raw: !!v.raw, signal }, (t) => process.stdout.write(t), (t) => process.stderr.write(t));
      return reportErrors(r.errors) || r.code;
    },
  },
  audit: {
    summary: "the last lines of each host's audit log (deploys, rollbacks, releases, locks, execs)",
    usage: "pulumi-kamal audit [--host H] [-n N]\n  -n, --lines N   lines per host (default 50)",
    options: { host: { type: "string" }, lines: { type: "string", short: "n" } },
    async run(v) {
      const [d, { scopesOnHosts, selectApps }, { auditTail }] = await Promise.all([load(v), select(), import("../lock")]);
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
      const [d, { scopesOnHosts, selectApps }, { formatLock, lockAcquire, lockRelease, lockStatus }] = await Promise.all([load(v), select(), import("../lock")]);
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
};

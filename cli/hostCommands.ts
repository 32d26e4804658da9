/**
 * Kamal's day-two commands on what runs (`app`, `accessory`, `proxy`, `server`, `registry`):
 * each reads the stack's state for the hosts and containers, runs one command per host at
 * once through the provider's SSH executor, and prints each host's output prefixed with it.
 * They change no state: a container stopped here is drift that `pulumi refresh` finds and
 * the next deploy repairs, as after Kamal's own.
 */
import {
  containerLifecycle,
  describeContainers,
  dockerLogout,
  hostCommand,
  listContainers,
  listImages,
  execIn,
} from "../provider/commands/operator";
import { serviceRole, wantsLabelRouting } from "../provider/commands/app";
import { dockerLogin } from "../provider/commands/docker";
import { TraefikRouting } from "../provider/handlers/routing";
import { routeRunning } from "../provider/handlers/swap/traffic";
import type { SshConnectionConfig } from "../provider/config/values";
import { connect, eachHost, HostError } from "./remote";
import { onHost, selectAccessories, selectApps, type Filters } from "./select";
import type { Deployed } from "./stack";
import { UsageError } from "./usage";

type Write = (line: string) => void;

interface OnHost {
  cfg: { hostName: string; connection: SshConnectionConfig };
}

/** Runs a command per item, each output line prefixed with the item's host. */
async function onEach<T extends OnHost>(items: T[], step: string, write: Write, fn: (item: T) => ReturnType<typeof describeContainers>, show: (item: T, stdout: string) => string[] = (i, o) => prefixed(i.cfg.hostName, o)): Promise<HostError[]> {
  const { errors } = await eachHost(items, step, async (item) => {
    const conn = await connect(item.cfg.connection);
    const r = await conn.run(fn(item));
    if (r.code !== 0) throw new HostError(item.cfg.hostName, step, new Error((r.stderr || r.stdout).trim() || `exit ${r.code}`));
    for (const line of show(item, r.stdout)) write(line);
  });
  return errors;
}

function prefixed(host: string, text: string): string[] {
  return text.split("\n").filter((l) => l.trim()).map((l) => `${host} | ${l}`);
}

/** `app stop|start|containers|images|version`, over the selected app containers. */
export async function app(sub: string, d: Deployed, f: Filters, write: Write): Promise<HostError[]> {
  const apps = selectApps(d, f);
  if (!apps.length) throw new UsageError(`stack ${d.stack} has no app containers`);
  switch (sub) {
    case "stop":
      return onEach(apps, "stopping the app", write, (a) => containerLifecycle("stop", a.container, a.cfg.stopWaitTime), (a) => [`${a.cfg.hostName}: stopped ${a.container}`]);
    case "start": {
      const { errors } = await eachHost(apps, "starting the app", async (a) => {
        const conn = await connect(a.cfg.connection);
        await conn.exec(containerLifecycle("start", a.container));
        // Started again, a container may have another address: its route follows it.
        if (a.cfg.traefik && !wantsLabelRouting(a.cfg)) {
          const routing = await TraefikRouting.discover(conn, serviceRole(a.cfg));
          if (routing?.byRoutes) await routeRunning(conn, a.cfg, routing, a.container);
        }
        write(`${a.cfg.hostName}: started ${a.container}`);
      });
      return errors;
    }
    case "containers":
      return onEach(distinct(apps, (a) => `${a.cfg.hostName} ${a.cfg.service} ${a.cfg.role} ${a.cfg.destination ?? ""}`), "listing the app's containers", write, (a) =>
        listContainers({ service: a.cfg.service, role: a.cfg.role, ...(a.cfg.destination ? { destination: a.cfg.destination } : {}) }),
      );
    case "images":
      return onEach(distinct(apps, (a) => `${a.cfg.hostName} ${a.cfg.image}`), "listing the app's images", write, (a) => listImages(a.cfg.image));
    case "version":
      // What the host runs (the container's version label), as Kamal asks the host.
      return onEach(apps, "reading the running version", write, (a) => describeContainers([a.container]), (a, out) => {
        const [, status, , , , , version] = out.trim().split("\t");
        return [`${a.cfg.hostName}: ${version || "?"}${status && status !== "running" ? ` (${status})` : ""}`];
      });
    default:
      throw new UsageError("app needs one of: stop, start, containers, images, version");
  }
}

/** `accessory start|stop|restart|details|exec NAME`. */
export async function accessory(sub: string, d: Deployed, name: string, host: string | undefined, cmd: string[], write: Write): Promise<HostError[]> {
  const found = name === "all" ? d.accessories.filter((a) => onHost(host, a)) : selectAccessories(d, name, host);
  if (!found.length) throw new UsageError(`stack ${d.stack} has no accessory ${name}${host ? ` on ${host}` : ""} (accessories: ${[...new Set(d.accessories.map((a) => a.cfg.name))].join(", ") || "none"})`);
  switch (sub) {
    case "start":
    case "stop":
    case "restart":
      return onEach(found, `${sub === "stop" ? "stopping" : sub === "start" ? "starting" : "restarting"} ${name}`, write, (a) => containerLifecycle(sub, a.container, a.cfg.stopWaitTime), (a) => [`${a.cfg.hostName}: ${sub}${sub === "stop" ? "ped" : "ed"} ${a.container}`]);
    case "details":
      return onEach(found, `listing ${name}`, write, (a) => listContainers({ service: a.container }));
    case "exec":
      if (!cmd.length) throw new UsageError(`accessory exec needs a command: pulumi-kamal accessory exec ${name} -- CMD`);
      return onEach(found, `running ${cmd[0]} in ${name}`, write, (a) => execIn(a.container, cmd));
    default:
      throw new UsageError("accessory needs one of: boot, reboot, start, stop, restart, details, exec, logs");
  }
}

/** `proxy start|stop|restart|details`: each host's Traefik. */
export async function proxy(sub: string, d: Deployed, host: string | undefined, write: Write): Promise<HostError[]> {
  const traefiks = d.traefiks.filter((t) => onHost(host, t));
  if (!traefiks.length) throw new UsageError(`stack ${d.stack} has no Traefik${host ? ` on ${host}` : ""}`);
  switch (sub) {
    case "start":
    case "stop":
    case "restart":
      return onEach(traefiks, `${sub === "stop" ? "stopping" : sub === "start" ? "starting" : "restarting"} Traefik`, write, (t) => containerLifecycle(sub, t.container), (t) => [`${t.cfg.hostName}: ${sub}${sub === "stop" ? "ped" : "ed"} ${t.container}`]);
    case "details":
      return onEach(traefiks, "listing Traefik", write, (t) => describeContainers([t.container]), (t, out) => {
        const [, status, health, started, , image] = out.trim().split("\t");
        return [`${t.cfg.hostName}: ${t.container} ${image} ${status}${health ? ` (${health})` : ""} since ${started}`];
      });
    default:
      throw new UsageError("proxy needs one of: start, stop, restart, details, logs");
  }
}

/** Every host of the stack once (apps, accessories, Traefiks), by connection. */
function hostsOf(d: Deployed, host?: string): OnHost[] {
  return distinct([...d.apps, ...d.accessories, ...d.traefiks].filter((x) => onHost(host, x)), (x) => `${x.cfg.connection.user}@${x.cfg.connection.host}:${x.cfg.connection.port}`);
}

/** `server exec -- CMD`: the command on every host of the stack (or one). */
export async function serverExec(d: Deployed, host: string | undefined, cmd: string[], write: Write, raw = false): Promise<HostError[]> {
  if (!cmd.length) throw new UsageError('server exec needs a command: pulumi-kamal server exec -- "df -h /"');
  const hosts = hostsOf(d, host);
  if (!hosts.length) throw new UsageError(`stack ${d.stack} has no host${host ? ` ${host}` : "s"}`);
  // Kamal's --raw: each host's output as it is, unprefixed.
  return onEach(hosts, `running ${cmd[0]}`, raw ? (t) => process.stdout.write(t) : write, () => hostCommand(cmd), raw ? (_i, o) => [o] : undefined);
}

/** `registry login|logout`: every app host, with the registry its containers pull from
 * (the password on stdin, never on a command line). */
export async function registry(sub: string, d: Deployed, host: string | undefined, write: Write): Promise<HostError[]> {
  if (sub !== "login" && sub !== "logout") throw new UsageError("registry needs one of: login, logout");
  const apps = distinct(d.apps.filter((a) => a.cfg.registry && onHost(host, a)), (a) => `${a.cfg.connection.host}:${a.cfg.connection.port} ${a.cfg.registry!.server}`);
  if (!apps.length) throw new UsageError(`stack ${d.stack} deploys from no registry with credentials${host ? ` on ${host}` : ""}`);
  const { errors } = await eachHost(apps, `${sub === "login" ? "logging in to" : "logging out of"} the registry`, async (a) => {
    const conn = await connect(a.cfg.connection);
    const reg = a.cfg.registry!;
    if (sub === "login") await conn.exec(dockerLogin(reg.server, reg.username), { stdin: reg.password, secrets: [reg.password] });
    else await conn.exec(dockerLogout(reg.server));
    write(`${a.cfg.hostName}: ${sub === "login" ? "logged in to" : "logged out of"} ${reg.server}`);
  });
  return errors;
}

function distinct<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((i) => !seen.has(key(i)) && !!seen.add(key(i)));
}

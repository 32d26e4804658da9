/** Choosing what a command acts on: by service, role, accessory and host. */
import type { AccessoryOnHost, AppOnHost, Deployed } from "./stack";
import { UsageError } from "./usage";

export interface Filters {
  service?: string;
  role?: string;
  host?: string;
}

/** A host given by its name in the program or its address. */
export function onHost(h: string | undefined, item: { cfg: { hostName: string; connection: { host: string } } }): boolean {
  return !h || item.cfg.hostName === h || item.cfg.connection.host === h;
}

/** The app containers of the stack's services (one service, if the stack has several and
 * `service` says which), their role and host. Refuses a name the stack does not have,
 * listing the ones it has. */
export function selectApps(d: Deployed, f: Filters): AppOnHost[] {
  const services = [...new Set(d.apps.map((a) => a.cfg.service))];
  if (f.service && !services.includes(f.service)) throw new UsageError(`stack ${d.stack} has no service ${f.service} (it has ${list(services)})`);
  let apps = d.apps.filter((a) => !f.service || a.cfg.service === f.service);
  if (f.role) {
    const roles = [...new Set(apps.map((a) => a.cfg.role))];
    if (!roles.includes(f.role)) throw new UsageError(`stack ${d.stack} has no role ${f.role} (roles: ${list(roles)})`);
    apps = apps.filter((a) => a.cfg.role === f.role);
  }
  if (f.host) {
    const hosts = [...new Set(apps.map((a) => a.cfg.hostName))];
    apps = apps.filter((a) => onHost(f.host, a));
    if (!apps.length) throw new UsageError(`no ${f.role ? `${f.role} ` : ""}container of stack ${d.stack} runs on ${f.host} (hosts: ${list(hosts)})`);
  }
  return apps;
}

/** The role a command means when none is given: Kamal's primary role, "web" when there is
 * one, else the first. */
export function primaryRole(apps: AppOnHost[]): string | undefined {
  const roles = [...new Set(apps.map((a) => a.cfg.role))];
  return roles.includes("web") ? "web" : roles[0];
}

export function selectAccessories(d: Deployed, name: string, host?: string): AccessoryOnHost[] {
  const found = d.accessories.filter((a) => a.cfg.name === name || a.container === name);
  return found.filter((a) => onHost(host, a));
}

/** Each distinct (host, service, destination) of the apps: where locks and audit logs are. */
export function scopesOnHosts(apps: AppOnHost[]): AppOnHost[] {
  const seen = new Set<string>();
  return apps.filter((a) => {
    const key = `${a.cfg.connection.user}@${a.cfg.connection.host}:${a.cfg.connection.port} ${a.cfg.service} ${a.cfg.destination ?? ""}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const list = (xs: string[]) => (xs.length ? xs.join(", ") : "none");

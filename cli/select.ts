/** Choosing what a command acts on: by service, role, accessory and host. */
import { defaultPrimary } from "../components/primaryRole";
import type { AccessoryOnHost, AppOnHost, Deployed } from "./stack";
import { UsageError } from "./usage";

export interface Filters {
  service?: string;
  role?: string;
  host?: string;
}

/** A host given by its name in the program or its address; as Kamal's `--hosts`, a comma list
 * of names whose each may be a shell pattern (`*`, `?`, `[…]`, `{a,b}`: `-h '10.0.0.*'`). */
export function onHost(h: string | undefined, item: { cfg: { hostName: string; connection: { host: string } } }): boolean {
  if (!h) return true;
  const match = kamalPattern(h);
  return match(item.cfg.hostName) || match(item.cfg.connection.host);
}

/** Kamal's host and role filters (`File.fnmatch` with extended globs over a comma list). */
export function kamalPattern(list: string): (value: string) => boolean {
  const patterns: string[] = [];
  let depth = 0;
  let current = "";
  for (const c of list) {
    if (c === "," && depth === 0) {
      patterns.push(current);
      current = "";
      continue;
    }
    if (c === "{") depth++;
    if (c === "}") depth = Math.max(0, depth - 1);
    current += c;
  }
  patterns.push(current);
  const regexes = patterns.filter((p) => p.trim()).map((p) => new RegExp(`^${globSource(p.trim())}$`));
  return (value) => regexes.some((r) => r.test(value));
}

function globSource(glob: string): string {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) out += "\\[";
      else {
        out += `[${glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else if (c === "{") {
      const end = glob.indexOf("}", i + 1);
      if (end < 0) out += "\\{";
      else {
        out += `(?:${glob.slice(i + 1, end).split(",").map(globSource).join("|")})`;
        i = end;
      }
    } else out += c.replace(/[.+^$()|\\/]/g, "\\$&");
  }
  return out;
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
    // Kamal's --roles: a comma list, each possibly a pattern (`-r 'web*'`).
    const match = kamalPattern(f.role);
    if (!roles.some(match)) throw new UsageError(`stack ${d.stack} has no role ${f.role} (roles: ${list(roles)})`);
    apps = apps.filter((a) => match(a.cfg.role));
  }
  if (f.host) {
    const hosts = [...new Set(apps.map((a) => a.cfg.hostName))];
    apps = apps.filter((a) => onHost(f.host, a));
    if (!apps.length) throw new UsageError(`no ${f.role ? `${f.role} ` : ""}container of stack ${d.stack} runs on ${f.host} (hosts: ${list(hosts)})`);
  }
  return apps;
}

/** The role a command means when none is given: the Service's primary role (recorded on its
 * containers when it is not the default), else "web" when there is one, else the first. */
export function primaryRole(apps: AppOnHost[]): string | undefined {
  const named = apps.find((a) => a.cfg.primary)?.cfg.role;
  if (named) return named;
  const roles = [...new Set(apps.map((a) => a.cfg.role))];
  return roles.length ? defaultPrimary(roles) : undefined;
}

/** Kamal's primary host (`-p`): the first host of the primary role, by its name in the program. */
export function primaryHost(d: Deployed, service?: string): string {
  const apps = selectApps(d, { service });
  const role = primaryRole(apps);
  const first = apps.find((a) => a.cfg.role === role);
  if (!first) throw new UsageError(`-p/--primary: stack ${d.stack} has no app deployed`);
  return first.cfg.hostName;
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

/**
 * Each section of a parsed deploy.yml normalized as Kamal reads it: ssh (and the OpenSSH
 * config files), registry, env, roles with their proxy routes, accessories; Kamal 2's
 * shared network.
 */
import { name as nameSchema } from "../provider/config/values";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { ConfigProblem } from "../provider/config/errors";
import type { SshHostConfig } from "./sshConfig";
import { secretEnvName, type ValueRef, type KamalEnv, type KamalHost, type KamalRole, type KamalRoute, type KamalAccessory, type KamalConfig } from "./model";

/** The mode Kamal gives an accessory's uploaded file when its entry names none
 * (Kamal::Cli::Accessory#upload: `chmod 755`; Configuration::Accessory's default_mode). */
const KAMAL_FILE_MODE = "755";
import { env, proxy, pathSpec, registryConfig, accessory, root, type Raw } from "./schema";

/** Kamal 2's shared Docker network, created on each host: apps, accessories and the proxy
 * reach each other by container name. */
export const KAMAL_NETWORK = "kamal";

/**
 * Kamal 2's networks of a container: `first` (the kamal network, or an accessory's own
 * `network`), then any its options name, as Kamal's `docker run --network kamal … <options>`
 * adds them. Host, none or another container's network cannot be combined with another:
 * Docker refuses the pair, so the deploy of that container fails, as Kamal's does; said at
 * load, naming the option.
 */
export function kamal2Networks(first: string, options: KamalRole["options"], at: string, warnings: string[]): KamalRole["options"] {
  const { network, net, ...rest } = options;
  const all = [...new Set([first, ...[network, net].flat().filter((n): n is string => typeof n === "string")])];
  const exclusive = all.find((n) => /^(host|none|container:)/.test(n));
  if (exclusive && all.length > 1) warnings.push(`${at}.options.network: ${exclusive} cannot be combined with the ${first} network Kamal 2 puts the container on: Docker refuses the pair, so its deploy fails, as Kamal's does`);
  return { ...rest, network: all.length === 1 ? all[0] : all };
}

/**
 * What the SSH config files (`ssh.config`) say about the hosts, as net-ssh applies them under
 * Kamal: an alias's HostName; IdentityFile and ProxyJump unless deploy.yml sets `ssh.keys` /
 * `ssh.proxy` / `ssh.proxy_command` (one SSH setting serves every host here, so hosts that
 * differ are refused, naming them); ProxyCommand as `ssh.proxy_command`.
 */
export function sshConfigOf(
  raw: z.output<typeof root>,
  roles: KamalRole[],
  accessories: KamalAccessory[],
  lookup: ((host: string) => SshHostConfig) | undefined,
  problems: ConfigProblem[],
): { hostNames: Record<string, string>; keyPaths: string[]; proxy?: { host: string; user: string; port?: number }; proxyCommand?: string } {
  const out: { hostNames: Record<string, string>; keyPaths: string[]; proxy?: { host: string; user: string; port?: number }; proxyCommand?: string } = { hostNames: {}, keyPaths: [] };
  if (!lookup) return out;
  const hosts = [...new Set([...roles.flatMap((r) => r.hosts.map((h) => h.address)), ...accessories.flatMap((a) => a.hosts)])];
  const seen = hosts.map((h) => ({ host: h, ...lookup(h) }));
  for (const s of seen) {
    if (s.hostName && s.hostName !== s.host) out.hostNames[s.host] = s.hostName;
  }
  const same = (what: string, values: string[]) => {
    const distinct = [...new Set(values)];
    if (distinct.length > 1) {
      const [a, b] = [seen[values.indexOf(distinct[0])].host, seen[values.indexOf(distinct[1])].host];
      problems.push({ path: "ssh.config", message: `hosts ${a} and ${b} have different ${what} in the SSH config; one setting serves every host here: set it in deploy.yml` });
    }
    return distinct[0];
  };
  if (!raw.ssh?.keys && !raw.ssh?.key_data) {
    const keys = same("IdentityFile", seen.map((s) => JSON.stringify(s.identityFiles)));
    if (keys) out.keyPaths = JSON.parse(keys) as string[];
  }
  if (!raw.ssh?.proxy && !raw.ssh?.proxy_command) {
    // OpenSSH takes the first of ProxyJump / ProxyCommand a host's config gives.
    const command = same("ProxyCommand", seen.map((s) => s.proxyCommand ?? ""));
    if (command) out.proxyCommand = command;
    const jump = command ? "" : same("ProxyJump", seen.map((s) => s.proxyJump ?? ""));
    if (jump && jump.includes(",")) problems.push({ path: "ssh.config", message: `ProxyJump ${jump} is a chain of jump hosts, which is not supported: one jump host` });
    else if (jump) {
      const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(jump);
      if (m) {
        const own = lookup(m[2]);
        out.proxy = { host: own.hostName ?? m[2], user: m[1] ?? own.user ?? os.userInfo().username, port: m[3] ? Number(m[3]) : own.port };
      }
    }
  }
  return out;
}

/** Credentials of a registry; only a localhost registry may have none (Kamal 2.10+). */
export function registryOf(r: z.output<typeof registryConfig> | undefined, at: string, problems: ConfigProblem[]): KamalConfig["registry"] {
  if (!r) return undefined;
  if (!/^localhost[:$]/.test(r.server ?? "")) {
    for (const key of ["username", "password"] as const) {
      if (r[key] === undefined || r[key] === "") problems.push({ path: `${at}.${key}`, message: "is required (only a localhost registry may have no credentials)" });
    }
  }
  return r.username !== undefined && r.password !== undefined ? { server: r.server ?? "docker.io", username: refOf(r.username), password: refOf(r.password) } : undefined;
}

export function refOf(v: string | string[]): ValueRef {
  return Array.isArray(v) ? { secret: v[0] } : { value: v };
}

export function envOf(e: z.output<typeof env> | undefined): KamalEnv {
  if (!e) return { clear: {}, secret: [] };
  if (isEnvBlock(e)) return { clear: e.clear ?? {}, secret: e.secret ?? [] };
  return { clear: e as Record<string, string>, secret: [] };
}

export function isEnvBlock(e: unknown): e is { clear?: Record<string, string>; secret?: string[]; tags?: Record<string, unknown> } {
  return isPlain(e) && Object.keys(e).every((k) => k === "clear" || k === "secret" || k === "tags") && Object.keys(e).length > 0;
}

/** Kamal's Env#merge: clear values merge (the later wins), secret names are a union (an
 * entry for a name already there replaces it). */
export function mergeEnv(a: KamalEnv, b: KamalEnv): KamalEnv {
  const names = new Set(b.secret.map((e) => secretEnvName(e).name));
  return { clear: { ...a.clear, ...b.clear }, secret: [...a.secret.filter((e) => !names.has(secretEnvName(e).name)), ...b.secret] };
}

export function seconds(d: number | string | undefined, fallback: number): number {
  if (d === undefined) return fallback;
  if (typeof d === "number") return d;
  const n = parseFloat(d);
  return d.endsWith("ms") ? n / 1000 : d.endsWith("m") ? n * 60 : n;
}

export function rolesOf(raw: Raw, isKamal2: boolean, primaryRole: string, globalEnv: KamalEnv, problems: ConfigProblem[], warnings: string[]): KamalRole[] {
  const servers = Array.isArray(raw.servers) ? { web: raw.servers } : raw.servers;
  const tagEnv = isEnvBlock(raw.env) ? (raw.env as { tags?: Record<string, unknown> }).tags ?? {} : {};
  const out: KamalRole[] = [];
  for (const [name, spec] of Object.entries(servers)) {
    const r = Array.isArray(spec) ? { hosts: spec } : spec;
    const at = `servers.${name}`;
    if (!nameSchema.safeParse(name).success) problems.push({ path: at, message: "role names may contain only letters, digits, '_', '.', '-'" });
    const roleEnv = mergeEnv(globalEnv, envOf(r.env));
    const hosts: KamalHost[] = (r.hosts ?? []).map((h) => {
      const [address, tags] = typeof h === "string" ? [h, [] as string[]] : Object.entries(h).map(([a, t]) => [a, Array.isArray(t) ? t : [t]] as const)[0];
      let env = roleEnv;
      // A tag without env.tags.<tag> adds nothing (Kamal ignores it).
      for (const te of tags.map((t) => tagEnv[t]).filter((t) => t !== undefined)) {
        env = mergeEnv(env, isEnvBlock(te) ? { clear: (te as { clear?: Record<string, string> }).clear ?? {}, secret: (te as { secret?: string[] }).secret ?? [] } : { clear: te as Record<string, string>, secret: [] });
      }
      return { address: String(address), tags: [...tags], env };
    });
    if (hosts.length === 0) {
      if (name !== primaryRole && !raw.allow_empty_roles) {
        problems.push({ path: at, message: `no servers specified for the ${name} role (allow_empty_roles: true skips it)` });
      } else if (name !== primaryRole) {
        warnings.push(`${at}: has no hosts; skipped (allow_empty_roles)`);
      }
      continue;
    }
    const primary = name === primaryRole;
    // Kamal: the primary role runs behind the proxy unless it says false; another role only
    // when it says so (true, or settings).
    const traefik = isKamal2 ? (primary ? r.proxy !== false : !!r.proxy) : primary ? r.traefik !== false : !!r.traefik;
    if (isPlain(r.traefik)) warnings.push(`${at}.traefik: role-level Traefik settings are not used; put labels under ${at}.labels`);
    // Kamal bridges assets only for a role behind its proxy.
    const assetPath = r.asset_path ?? raw.asset_path;
    if (r.asset_path !== undefined && !traefik) warnings.push(`${at}.asset_path: not used (assets are bridged only for a role behind the proxy, as in Kamal)`);

    const hc = { ...(raw.healthcheck ?? {}), ...(r.healthcheck ?? {}) };
    if (hc.exposed_port !== undefined) warnings.push(`${at}.healthcheck.exposed_port: not used`);
    // Kamal 2: a role's proxy settings deep-merged over the top-level ones.
    const p = isKamal2 && traefik ? (deepMerge(raw.proxy ?? {}, isPlain(r.proxy) ? r.proxy : {}) as NonNullable<Raw["proxy"]>) : undefined;
    if (p) for (const w of proxyWarnings(p, isPlain(r.proxy) ? `${at}.proxy` : "proxy")) if (!warnings.includes(w)) warnings.push(w);
    const appPort = isKamal2 ? p?.app_port ?? 80 : hc.port ?? 3000;
    // Kamal: `host` may list several, comma-separated.
    const routeHosts = p ? proxyHosts(p) : [];
    let healthcheck: KamalRole["healthcheck"];
    if (isKamal2) {
      healthcheck = p
        ? { path: p.healthcheck?.path ?? "/up", port: appPort, interval: seconds(p.healthcheck?.interval, 1), timeout: seconds(p.healthcheck?.timeout, 5), deadline: raw.deploy_timeout ?? 30 }
        : undefined;
    } else if (traefik || r.healthcheck) {
      const attempts = hc.max_attempts ?? 7;
      // Kamal 1 polls max_attempts times with a linearly growing pause (1s, 2s, …).
      healthcheck = { path: hc.path ?? "/up", port: appPort, cmd: hc.cmd, interval: seconds(hc.interval, 1), deadline: raw.deploy_timeout ?? (attempts * (attempts + 1)) / 2, ...(hc.log_lines !== undefined ? { logLines: hc.log_lines } : {}), ...(hc.cord !== undefined ? { cord: hc.cord } : {}) };
    }
    out.push({
      name,
      hosts,
      cmd: r.cmd,
      // Kamal 2 runs every app container on the `kamal` network (reached by name).
      options: isKamal2 ? kamal2Networks(KAMAL_NETWORK, r.options ?? {}, at, warnings) : r.options ?? {},
      labels: { ...(raw.labels ?? {}), ...(r.labels ?? {}) },
      traefik,
      appPort,
      healthcheck,
      routeHosts,
      route: p ? proxyRoute(p, `${isPlain(r.proxy) ? `${at}.proxy` : "proxy"}`, name, hosts.length, routeHosts, problems) : undefined,
      stopWaitTime: r.stop_timeout,
      // A role's logging deep-merged over the top-level one, as Kamal's.
      logging: r.logging && raw.logging ? (deepMerge(raw.logging, r.logging) as KamalRole["logging"]) : (r.logging ?? raw.logging),
      assetPath: traefik ? assetPath : undefined,
    });
  }
  return out;
}

/** The host names a Kamal 2 proxy section routes: `host` (a comma list) and `hosts`. */
function proxyHosts(p: z.output<typeof proxy>): string[] {
  return [...(p.host ? p.host.split(",").map((h) => h.trim()) : []), ...(p.hosts ?? [])];
}

/** Kamal 2 proxy settings Traefik here does not apply, by path. */
export function proxyWarnings(p: z.output<typeof proxy>, at: string): string[] {
  const out: string[] = [];
  if (p.run !== undefined && at !== "proxy") out.push(`${at}.run: not applied (the proxy's container is the host's, set by the top-level proxy.run)`);
  if (p.buffering && p.buffering.requests !== p.buffering.responses && (p.buffering.requests !== undefined || p.buffering.responses !== undefined)) {
    out.push(`${at}.buffering: Traefik buffers requests and responses together: both are buffered`);
  }
  return out;
}

/** Kamal 2's proxy settings of a role as route settings, with kamal-proxy's defaults: a
 * 30 s response timeout, headers forwarded unless ssl. Kamal's own rules first: ssl needs a
 * host, and Let's Encrypt a single server. */
export function proxyRoute(p: z.output<typeof proxy>, at: string, role: string, hostCount: number, routeHosts: string[], problems: ConfigProblem[]): KamalRoute {
  let ssl: KamalRoute["ssl"] = false;
  if (typeof p.ssl === "object") {
    const { certificate_pem: cert, private_key_pem: key } = p.ssl;
    if (cert && !key) problems.push({ path: `${at}.ssl`, message: "Missing private_key_pem setting (required when certificate_pem is present)" });
    if (key && !cert) problems.push({ path: `${at}.ssl`, message: "Missing certificate_pem setting (required when private_key_pem is present)" });
    ssl = cert && key ? { certificatePem: cert, privateKeyPem: key } : true;
  } else if (p.ssl) ssl = true;
  if (ssl && !routeHosts.length) problems.push({ path: at, message: "Must set a host to enable automatic SSL" });
  if (p.host && p.hosts) problems.push({ path: at, message: "Specify one of 'host' or 'hosts', not both" });
  if (ssl === true && hostCount > 1) {
    problems.push({ path: `${at}.ssl`, message: `SSL is only supported on a single server unless you provide custom certificates, found ${hostCount} servers for role ${role}` });
  }
  const prefixes = p.path_prefixes ?? (p.path_prefix ? p.path_prefix.split(",").map((x) => x.trim()).filter(Boolean) : []);
  const b = p.buffering;
  const buffered = b && (b.requests !== false || b.responses !== false);
  return {
    ssl,
    sslRedirect: p.ssl_redirect,
    pathPrefixes: prefixes,
    stripPathPrefix: p.strip_path_prefix,
    responseTimeout: seconds(p.response_timeout, 30),
    buffering: buffered ? { maxRequestBody: b.max_request_body || undefined, maxResponseBody: b.max_response_body || undefined, memory: b.memory } : undefined,
    forwardHeaders: p.forward_headers ?? !ssl,
  };
}

export function accessoryOf(
  service: string,
  name: string,
  a: z.output<typeof accessory>,
  roles: KamalRole[],
  problems: ConfigProblem[],
  warnings: string[],
  appRoot: string,
  kamal: 1 | 2,
  deployTimeout?: number,
): KamalAccessory {
  const at = `accessories.${name}`;
  const placement = (["host", "hosts", "role", "roles", "tag", "tags"] as const).filter((k) => a[k] !== undefined);
  if (placement.length !== 1) problems.push({ path: at, message: "specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`" });
  const ofRole = (r: string) => {
    const found = roles.find((x) => x.name === r);
    if (!found) problems.push({ path: `${at}.${a.role ? "role" : "roles"}`, message: `names no role with hosts: ${r}` });
    return found?.hosts.map((h) => h.address) ?? [];
  };
  const ofTag = (t: string) => roles.flatMap((r) => r.hosts.filter((h) => h.tags.includes(t)).map((h) => h.address));
  const hosts = [
    ...(a.host ? [a.host] : []),
    ...(a.hosts ?? []),
    ...[...(a.role ? [a.role] : []), ...(a.roles ?? [])].flatMap(ofRole),
    ...[...(a.tag ? [a.tag] : []), ...(a.tags ?? [])].flatMap(ofTag),
  ];
  if (placement.length === 1 && hosts.length === 0) problems.push({ path: `${at}.${placement[0]}`, message: "names no host" });
  // Kamal 2: the accessory's `network` (default kamal), then any its options name.
  const options = kamal === 2 ? kamal2Networks(a.network ?? KAMAL_NETWORK, a.options ?? {}, at, warnings) : { ...(a.network ? { network: a.network } : {}), ...(a.options ?? {}) };
  let proxied: KamalAccessory["proxy"];
  if (a.proxy && kamal === 1) warnings.push(`${at}.proxy: not used (Kamal 1 has no accessory proxy)`);
  else if (a.proxy) {
    // Kamal 2: the accessory behind the host's proxy, routed by its host names.
    const p = a.proxy;
    for (const w of proxyWarnings(p, `${at}.proxy`)) warnings.push(w);
    const routeHosts = proxyHosts(p);
    if (!routeHosts.length) {
      // kamal-proxy would send it every request no app's host claims; Traefik here routes by host name.
      warnings.push(`${at}.proxy: not routed (it names no host: set host or hosts to route those names to it)`);
    } else {
      // Routed once it answers its health check, within Kamal's deploy_timeout.
      const healthcheck = p.healthcheck ? { path: p.healthcheck.path ?? "/up", interval: seconds(p.healthcheck.interval, 1), timeout: seconds(p.healthcheck.timeout, 5), deadline: deployTimeout ?? 30 } : undefined;
      proxied = { hosts: routeHosts, appPort: p.app_port ?? 80, route: proxyRoute(p, `${at}.proxy`, name, hosts.length, routeHosts, problems), ...(healthcheck ? { healthcheck } : {}) };
    }
  }
  // Kamal 2: an accessory's own registry; its server goes in front of the image.
  const registry = registryOf(a.registry, `${at}.registry`, problems);
  const files = (a.files ?? []).map((spec, i) => {
    const { local: source, remote: target, options, mode, owner } = pathSpec(spec);
    const local = path.resolve(appRoot, source);
    if (!existsSync(local)) {
      problems.push({ path: `${at}.files.${i}`, message: `${source} does not exist (relative to ${appRoot})` });
      return { source, target, content: "", template: false };
    }
    // Kamal chmods every uploaded file, 755 unless the entry gives a mode (1.9 and 2.x alike).
    return { source, target, content: readFileSync(local, "utf8"), template: source.endsWith("erb"), ...(options ? { options } : {}), mode: mode ?? KAMAL_FILE_MODE, ...(owner ? { owner } : {}) };
  });

  return {
    name,
    containerName: a.service ?? `${service}-${name}`,
    image: a.registry?.server ? `${a.registry.server}/${a.image}` : a.image,
    registry,
    hosts: [...new Set(hosts)],
    port: a.port,
    cmd: a.cmd,
    env: envOf(a.env),
    files,
    directories: (a.directories ?? []).map((d) => {
      const { local, remote, options, mode, owner } = pathSpec(d);
      const path = `${local}:${remote}${options ? `:${options}` : ""}`;
      return mode || owner ? { path, ...(mode ? { mode } : {}), ...(owner ? { owner } : {}) } : path;
    }),
    volumes: a.volumes ?? [],
    options,
    labels: a.labels ?? {},
    ...(proxied ? { proxy: proxied } : {}),
  };
}

export function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; anything else (lists included) is replaced, as in Kamal (its
 * deep_merge: destination files over deploy.yml, a role's proxy and logging over the
 * top-level ones). */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = isPlain(cur) && isPlain(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

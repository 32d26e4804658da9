/**
 * Kamal's app conventions as argument fragments: container names, labels, routes, health
 * checks, the cord, and the `docker run` of one role's container.
 */
import { Command } from "./command";
import type { AppContainerConfig } from "../config/schemas";
import { CORD_IN_CONTAINER, runContainer } from "./docker";
import { maintenancePage, proxyErrorPages, type RouteSpec } from "./proxy";
import type { TraefikCapabilities } from "./traefik";
import { shellJoin, shellQuote } from "./shell";
import { runDirectoryAt } from "./files";

/** A scope: what one resource owns on a host. No destination is its own scope (""). */
export interface Scope {
  service: string;
  role: string;
  destination: string;
}

export function scopeOf(cfg: Pick<AppContainerConfig, "service" | "role" | "destination">): Scope {
  return { service: cfg.service, role: cfg.role, destination: cfg.destination ?? "" };
}

export function sameScope(a: Scope, b: Scope): boolean {
  return a.service === b.service && a.role === b.role && a.destination === b.destination;
}

/** How a scope is named in messages: `service "shop" role "web" destination "staging"`. */
export function describeScope(s: Scope): string {
  return `service "${s.service}" role "${s.role}" ${s.destination ? `destination "${s.destination}"` : "(no destination)"}`;
}

/** `service-role[-destination]`: Kamal's container prefix and Traefik router/service name. */
export function serviceRole(cfg: Pick<AppContainerConfig, "service" | "role" | "destination">): string {
  return [cfg.service, cfg.role, cfg.destination].filter(Boolean).join("-");
}

/** Container name: `service-role[-destination]-version`. */
export function containerName(cfg: Pick<AppContainerConfig, "service" | "role" | "destination" | "version">): string {
  return `${serviceRole(cfg)}-${cfg.version}`;
}

/** An earlier copy of the same version, stepped aside for a new one (Kamal's suffix). */
export function replacedName(name: string, suffix: string): string {
  return `${name}_replaced_${suffix}`;
}

/** A container that failed its deploy: kept (the newest only) for its logs. */
export function failedName(name: string, suffix: string): string {
  return `${name}_failed_${suffix}`;
}

export type CopyKind = "current" | "replaced" | "failed";

/** Which kind of copy a scope's container is, from its name. */
export function copyKind(name: string): CopyKind {
  if (/_failed_[0-9a-f]+$/.test(name)) return "failed";
  if (/_replaced_[0-9a-f]+$/.test(name)) return "replaced";
  return "current";
}

/** A container of a scope, as listed on the host (newest first). */
export interface ScopeContainer {
  name: string;
  running: boolean;
  version: string;
}

/**
 * Retention by version: which stopped containers of a scope to remove once `serving` (of
 * `version`) serves. Kept: the `retain` most recent earlier versions (one container each,
 * the copy that served), and the newest failed container for its logs. Replaced copies of
 * a version and older failed containers never count. Running containers are never listed.
 */
export function pruneList(containers: readonly ScopeContainer[], serving: string, version: string, retain: number): string[] {
  const excess: string[] = [];
  const versionsKept = new Set<string>([version]);
  let failedKept = false;
  for (const c of containers) {
    if (c.name === serving || c.running) continue;
    const kind = copyKind(c.name);
    if (kind === "replaced") excess.push(c.name);
    else if (kind === "failed") {
      if (failedKept) excess.push(c.name);
      failedKept = true;
    } else if (versionsKept.has(c.version) || versionsKept.size > retain) excess.push(c.name);
    else versionsKept.add(c.version);
  }
  return excess;
}

/**
 * The labels by which every container of a scope is found, as Kamal sets them: the
 * destination label is always present, empty without a destination, so that filtering on
 * it never matches another destination's containers.
 */
export function scopeLabels(cfg: Pick<AppContainerConfig, "service" | "role" | "destination">): Record<string, string> {
  return { service: cfg.service, role: cfg.role, destination: cfg.destination ?? "" };
}

/** The Traefik rule of a role: its host names, or every request without any. */
export function hostRule(hosts: readonly string[]): string {
  if (hosts.length === 0) return "PathPrefix(`/`)";
  return hosts
    .map((h) => (h.startsWith("*.") ? `HostRegexp(\`^[^.]+${h.slice(1).replace(/\./g, "\\.")}$\`)` : `Host(\`${h}\`)`))
    .join(" || ");
}

/** A role's route as the host's Traefik can serve it: the route file's spec (without the
 * scope's name and servers), the certificate to install beside it, and what this Traefik
 * cannot do for it (each a message naming the setting; nothing is changed while any). */
export function routeFileSpec(
  cfg: Pick<AppContainerConfig, "hostName" | "routeHosts" | "proxy" | "maintenance"> & Partial<Pick<AppContainerConfig, "errorPages">>,
  can: TraefikCapabilities,
): { spec: Omit<RouteSpec, "name" | "servers">; certificate?: { certificatePem: string; privateKeyPem: string }; problems: string[]; notes: string[] } {
  const p = cfg.proxy;
  const problems: string[] = [];
  const on = `the Traefik on ${cfg.hostName}`;
  // The pages of the errors Traefik itself answers with; an app's own errors are its own.
  const served = Object.keys(proxyErrorPages(cfg.errorPages));
  let https: RouteSpec["https"];
  if (p.ssl) {
    if (!can.secure) problems.push(`proxy.ssl: ${on} has no HTTPS entrypoint: give that Traefik \`tls\` (an entrypoint on port 443)`);
    let certResolver: string | undefined;
    if (p.ssl === true) {
      certResolver = can.resolvers.includes("letsencrypt") ? "letsencrypt" : can.resolvers[0];
      if (!certResolver) problems.push(`proxy.ssl: ${on} has no ACME certificate resolver: give that Traefik \`tls.acme\`, or give this role its certificate (ssl.certificatePem, ssl.privateKeyPem)`);
    }
    if (can.secure) https = { web: can.web, secure: can.secure, certResolver, redirect: p.sslRedirect };
  }
  if (p.forwardHeaders === false && can.trustsForwardedHeaders && !can.plugin) {
    problems.push(`proxy.forwardHeaders: ${on} trusts forwarded headers and was started without this provider's plugin, which replaces them for this role: change anything of that Traefik (its restart adds the plugin)`);
  }
  if (p.forwardHeaders === true && !can.trustsForwardedHeaders) {
    problems.push(`proxy.forwardHeaders: ${on} does not trust forwarded headers, so the app would not see a client's: give that Traefik \`forwardedHeaders\` (true, or the addresses of the proxy in front of it)`);
  }
  return {
    spec: {
      rule: hostRule(cfg.routeHosts),
      pathPrefixes: p.pathPrefixes,
      stripPathPrefix: p.stripPathPrefix,
      https,
      responseTimeout: p.responseTimeout,
      buffering: p.buffering,
      stripForwardedHeaders: p.forwardHeaders === false && can.trustsForwardedHeaders,
      maintenance: cfg.maintenance ? { page: maintenancePage(cfg.maintenance), plugin: can.plugin } : undefined,
      errorPages: served.length && can.plugin && can.webPort ? { pages: cfg.errorPages!, at: `http://127.0.0.1:${can.webPort}`, entrypoint: can.web } : undefined,
    },
    certificate: typeof p.ssl === "object" ? p.ssl : undefined,
    problems,
    // Cosmetic: a route goes without them rather than not at all.
    notes: served.length && !(can.plugin && can.webPort) ? [`the error pages (${served.join(", ")}) are not served by ${on}: ${can.plugin ? "its web entrypoint's port is not in its arguments" : "it was started without this provider's plugin (any change of that Traefik restarts it with the plugin)"}; its errors are its own`] : [],
  };
}

/** The route settings that only route files carry: a role routed by its labels (Kamal 1's
 * way) cannot have them. */
export function routeOnlySettings(cfg: Pick<AppContainerConfig, "proxy" | "maintenance">): string[] {
  const p = cfg.proxy;
  return [
    ...(p.ssl ? ["proxy.ssl"] : []),
    ...(p.pathPrefixes.length ? ["proxy.pathPrefixes"] : []),
    ...(p.responseTimeout !== undefined ? ["proxy.responseTimeout"] : []),
    ...(p.buffering ? ["proxy.buffering"] : []),
    ...(p.forwardHeaders !== undefined ? ["proxy.forwardHeaders"] : []),
    ...(cfg.maintenance ? ["maintenance"] : []),
  ];
}

/** Kamal 1's Traefik labels for a role behind Traefik, user labels applied over them. */
export function traefikLabels(cfg: Pick<AppContainerConfig, "service" | "role" | "destination" | "appPort" | "routeHosts">): Record<string, string> {
  const name = serviceRole(cfg);
  return {
    "traefik.enable": "true",
    [`traefik.http.routers.${name}.rule`]: hostRule(cfg.routeHosts ?? []),
    [`traefik.http.services.${name}.loadbalancer.server.port`]: String(cfg.appPort),
    [`traefik.http.middlewares.${name}-retry.retry.attempts`]: "5",
    [`traefik.http.middlewares.${name}-retry.retry.initialinterval`]: "500ms",
    [`traefik.http.routers.${name}.middlewares`]: `${name}-retry@docker`,
  };
}

/**
 * How a role behind Traefik is routed on a host: `routes` (a route file the provider
 * writes; the container itself carries no Traefik labels) or `labels` (Kamal 1's router
 * labels and cord, for a Traefik that reads only labels).
 */
export type Routing = "routes" | "labels";

/** A role whose user labels configure Traefik keeps Kamal 1's label routing: those labels
 * only take effect on a container Traefik routes by its labels. */
export function wantsLabelRouting(cfg: Pick<AppContainerConfig, "labels">): boolean {
  return Object.keys(cfg.labels).some((k) => k.startsWith("traefik."));
}

export function appLabels(cfg: AppContainerConfig, routing: Routing = "labels"): Record<string, string> {
  return {
    ...scopeLabels(cfg),
    version: cfg.version,
    ...(cfg.traefik && routing === "labels" ? traefikLabels(cfg) : { "traefik.enable": "false" }),
    ...cfg.labels,
  };
}

/** The routes (entrypoints + rule) a set of container labels claims in Traefik. */
export function labelRoutes(labels: Record<string, string>): string[] {
  if (labels["traefik.enable"] === "false") return [];
  const routes: string[] = [];
  for (const [key, rule] of Object.entries(labels)) {
    const m = /^traefik\.http\.routers\.([^.]+)\.rule$/.exec(key);
    if (!m) continue;
    // No entrypoints, or `http` (what earlier releases wrote): the web entrypoint(s).
    const entrypoints = labels[`traefik.http.routers.${m[1]}.entrypoints`];
    routes.push(`${!entrypoints || entrypoints === "http" ? "*" : entrypoints} ${rule}`);
  }
  return routes;
}

/** The health command: the user's, or Kamal 1's curl probe; routed by labels, also the cord.
 * Behind route files with an HTTP path and no command, there is none: the swap probes the
 * path from outside the container, through the SSH connection, as Kamal 2's proxy does, so
 * images without curl work. */
export function healthCommand(cfg: AppContainerConfig, routing: Routing = "labels"): string | undefined {
  const hc = cfg.healthcheck;
  if (!hc) return undefined;
  if (cfg.traefik && routing === "routes" && !hc.cmd) return undefined;
  const probe = hc.cmd ?? shellJoin(["curl", "-f", `http://localhost:${hc.port}${hc.path}`]);
  if (!cfg.traefik || routing !== "labels" || hc.cord === false) return probe;
  return `(${probe}) && (stat ${shellQuote(`${hc.cord}/cord`)} > /dev/null || exit 1)`;
}

export interface AppRunPlacement {
  name: string;
  /** Host directory of this container's cord, when behind Traefik. */
  cordDir?: string;
  /** Absolute path of the role's env file on the host. */
  envFile?: string;
  /** How the host's Traefik routes it (default: labels, Kamal 1's way). */
  routing?: Routing;
  /** The host directory mounted at the role's assetPath (asset bridging). */
  assetVolume?: string;
}

/** Kamal 2's container env, under the role's own (a role's value wins, as in Kamal). */
export function kamalEnv(cfg: Pick<AppContainerConfig, "version" | "connection" | "destination" | "env">, name: string): Record<string, string> {
  return {
    KAMAL_CONTAINER_NAME: name,
    KAMAL_VERSION: cfg.version,
    KAMAL_HOST: cfg.connection.host,
    ...(cfg.destination ? { KAMAL_DESTINATION: cfg.destination } : {}),
    ...cfg.env,
  };
}

export function runAppContainer(cfg: AppContainerConfig, at: AppRunPlacement): Command {
  const health = healthCommand(cfg, at.routing);
  return runContainer({
    name: at.name,
    image: `${cfg.image}:${cfg.version}`,
    restart: "unless-stopped",
    env: kamalEnv(cfg, at.name),
    envFile: at.envFile,
    volumes: [...(at.cordDir ? [`${at.cordDir}:${cfg.healthcheck?.cord || CORD_IN_CONTAINER}`] : []), ...cfg.volumes, ...(at.assetVolume && cfg.assetPath ? [`${at.assetVolume}:${cfg.assetPath}`] : [])],
    labels: appLabels(cfg, at.routing),
    health: health ? { cmd: health, interval: cfg.healthcheck!.interval, retries: cfg.healthcheck!.retries } : undefined,
    logging: cfg.logging,
    options: cfg.options,
    cmd: cfg.cmd,
  });
}

/**
 * Asset bridging, in Kamal's layout: `.kamal/apps/<service[-destination]>/assets/extracted/
 * <role>-<version>` holds what the image has at assetPath; `.../volumes/<role>-<version>` is
 * what that version's container mounts there.
 */
export function assetDirs(home: string, cfg: Pick<AppContainerConfig, "service" | "role" | "destination" | "runDirectory">, version: string) {
  const base = `${runDirectoryAt(home, cfg.runDirectory)}/apps/${[cfg.service, cfg.destination].filter(Boolean).join("-")}/assets`;
  return { base, extracted: `${base}/extracted/${cfg.role}-${version}`, volume: `${base}/volumes/${cfg.role}-${version}` };
}

/** Copies the image's assets out through a created (never started) container. */
export function extractAssets(cfg: AppContainerConfig, home: string): Command {
  const name = `${serviceRole(cfg)}-assets`;
  const { extracted } = assetDirs(home, cfg, cfg.version);
  const from = cfg.assetPath!.split(":")[0];
  // Repeatable: the helper container is removed first, the copy overwrites.
  const text = [
    `${shellJoin(["docker", "container", "rm", "--force", name])} >/dev/null 2>&1;`,
    shellJoin(["mkdir", "-p", extracted]),
    "&&", `${shellJoin(["docker", "container", "create", "--name", name, `${cfg.image}:${cfg.version}`])} >/dev/null`,
    "&&", shellJoin(["docker", "container", "cp", "-L", `${name}:${from}/.`, extracted]),
    "&&", `${shellJoin(["docker", "container", "rm", name])} >/dev/null`,
  ].join(" ");
  return Command.change(text, { repeatable: true });
}

/** The new version's volume: its own assets, then the previous version's where absent; and
 * the previous version's volume gets the new ones (Kamal's `cp -rnT`; the previous version's
 * may not exist, as after a first deploy with assetPath). */
export function syncAssetVolumes(cfg: AppContainerConfig, home: string, previous?: string): Command {
  const now = assetDirs(home, cfg, cfg.version);
  const parts = [`${shellJoin(["mkdir", "-p", now.volume])} && ${shellJoin(["cp", "-rT", now.extracted, now.volume])}`];
  if (previous && previous !== cfg.version) {
    const before = assetDirs(home, cfg, previous);
    parts.push(`{ ${shellJoin(["cp", "-rnT", before.extracted, now.volume])} 2>/dev/null || true; }`);
    parts.push(`{ ${shellJoin(["cp", "-rnT", now.extracted, before.volume])} 2>/dev/null || true; }`);
  }
  return Command.change(parts.join(" && "), { repeatable: true, engine: false });
}

/** Once only the new version serves: every other version's asset directories of the role. */
export function cleanUpAssets(cfg: AppContainerConfig, home: string): Command {
  const now = assetDirs(home, cfg, cfg.version);
  const keep = `${cfg.role}-${cfg.version}`;
  const text = ["extracted", "volumes"]
    .map((d) => `{ ${shellJoin(["find", `${now.base}/${d}`, "-mindepth", "1", "-maxdepth", "1", "-name", `${cfg.role}-*`, "!", "-name", keep, "-exec", "rm", "-rf", "{}", "+"])} 2>/dev/null || true; }`)
    .join("; ");
  return Command.change(text, { repeatable: true, engine: false });
}

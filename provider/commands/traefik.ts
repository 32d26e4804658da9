/** Kamal's Traefik container: Docker provider reading container labels. */
import { Command } from "./command";
import type { TraefikContainerConfig } from "../config/schemas";
import { ensureNetwork, renameContainer, runContainer, startContainer, stopContainer } from "./docker";
import { shellJoin, shellQuote } from "./shell";
import { PLUGIN_MODULE, PLUGIN_NAME, PLUGINS_IN_TRAEFIK, PLUGINS_IN_PROXY } from "./traefikPlugin";
import { ROUTES_IN_TRAEFIK, ROUTES_IN_PROXY } from "./proxy";
import { RUN_DIRECTORY } from "../config/values";
import { runDirectoryAt } from "./files";

/** The entrypoint on container port 80, where the web port is published: the user's own
 * (Kamal 1's Let's Encrypt recipe names it `web`, with `websecure` on 443), else ours,
 * `http` (Traefik's default name, which Kamal 1's labels use). Traefik's keys are
 * case-insensitive. */
export function webEntrypoint(args: Record<string, string | number | boolean>): { name: string; ours: boolean } {
  for (const [key, value] of Object.entries(args)) {
    const m = /^entrypoints\.([^.]+)\.address$/i.exec(key);
    if (m && /^(\[[^\]]*\]|[^:]*):80(\/tcp)?$/.test(String(value))) return { name: m[1], ours: false };
  }
  return { name: "http", ours: true };
}

/** The HTTPS entrypoint, on container port 443: the user's own (`websecure` in Kamal 1's
 * Let's Encrypt recipe), else ours, `https`; undefined when Traefik has none. */
export function secureEntrypoint(cfg: Pick<TraefikContainerConfig, "args" | "tls">): { name: string; ours: boolean } | undefined {
  for (const [key, value] of Object.entries(cfg.args)) {
    const m = /^entrypoints\.([^.]+)\.address$/i.exec(key);
    if (m && /^(\[[^\]]*\]|[^:]*):443(\/tcp)?$/.test(String(value))) return { name: m[1], ours: false };
  }
  return cfg.tls ? { name: "https", ours: true } : undefined;
}

/** What a running Traefik can do for a route, read from its arguments (`docker inspect`'s
 * Args): the entrypoints by role, its ACME resolvers, the maintenance plugin, whether it
 * trusts clients' forwarded headers on the web entrypoint. */
export interface TraefikCapabilities {
  web: string;
  secure?: string;
  resolvers: string[];
  /** Our local plugin (maintenance pages, forwarded headers per route). */
  plugin: boolean;
  /** The web entrypoint's port inside Traefik's network namespace: where Traefik reaches
   * itself (the error pages' routes). */
  webPort?: number;
  trustsForwardedHeaders: boolean;
}

export function traefikCapabilities(argv: readonly string[]): TraefikCapabilities {
  // Traefik's keys are case-insensitive; the names in them are kept as written.
  const args: Record<string, string | boolean> = {};
  for (const a of argv) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (m) args[m[1]] = m[2] ?? true;
  }
  const get = (key: string) => Object.entries(args).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
  const web = webEntrypoint(args).name;
  const resolvers = [...new Set(Object.keys(args).flatMap((k) => /^certificatesresolvers\.([^.]+)\.acme\./i.exec(k)?.[1] ?? []))];
  const insecure = get(`entrypoints.${web}.forwardedheaders.insecure`);
  return {
    web,
    secure: secureEntrypoint({ args, tls: undefined })?.name,
    resolvers,
    plugin: get(`experimental.localplugins.${PLUGIN_NAME}.modulename`) === PLUGIN_MODULE,
    webPort: portOf(get(`entrypoints.${web}.address`)),
    trustsForwardedHeaders: insecure === true || insecure === "true" || !!get(`entrypoints.${web}.forwardedheaders.trustedips`),
  };
}

/** The port of an entrypoint address (":80", "0.0.0.0:8080", ":443/tcp"). */
function portOf(address: string | boolean | undefined): number | undefined {
  const m = typeof address === "string" ? /:(\d+)(\/\w+)?$/.exec(address) : null;
  return m ? Number(m[1]) : undefined;
}

/** Where Traefik keeps what it reads besides its arguments, on the host (under the SSH
 * user's home) and inside the container. */
export interface TraefikDirs {
  /** The scopes' route files (read only). */
  routes: string;
  /** ACME account and certificates (acme.json, mode 0600), kept across restarts. */
  acme: string;
  /** Local plugins' sources (read only). */
  plugins: string;
}

/** Under `<run directory>/proxy` (Kamal's proxy directory), the run directory relative to
 * the SSH user's home unless absolute. */
export function traefikDirs(home: string, runDirectory = RUN_DIRECTORY): TraefikDirs {
  const proxy = `${runDirectoryAt(home, runDirectory)}/proxy`;
  return { routes: `${proxy}/${ROUTES_IN_PROXY}`, acme: `${proxy}/${ACME_IN_PROXY}`, plugins: `${proxy}/${PLUGINS_IN_PROXY}` };
}

export const ACME_IN_PROXY = "acme";
export const ACME_IN_TRAEFIK = "/etc/traefik/acme";

/** A previous Traefik's directory copied into this one's (its run directory changed):
 * modes kept, so acme.json stays 0600. */
export function copyProxyFiles(from: string, to: string): Command {
  return Command.change(`${shellJoin(["mkdir", "-p", to])} && ${shellJoin(["cp", "-a", `${from}/.`, `${to}/`])}`, { repeatable: true, engine: false });
}

/** The ACME store's directory (0700) and an empty acme.json (0600, as Traefik demands)
 * unless there is one: created by the SSH user, written by Traefik. */
export function ensureAcmeStore(dir: string): Command {
  const store = shellQuote(`${dir}/acme.json`);
  return Command.change(`${shellJoin(["mkdir", "-p", "-m", "700", dir])} && { test -e ${store} || { umask 077 && touch ${store}; }; }`, { repeatable: true, engine: false });
}

/** A certificate with its key, for one host name. */
export interface HostCertificate {
  host: string;
  certificatePem: string;
  privateKeyPem: string;
}

/** Traefik's ACME store (acme.json: per resolver, its account and certificates, PEM bytes as
 * base64, in the `default` TLS store) with `certificates` among `resolver`'s, each replacing
 * one the store has for the same name; everything else as it was. Traefik serves them from
 * its next start and renews them as its own. */
export function withAcmeCertificates(store: string, resolver: string, certificates: HostCertificate[]): string {
  const data = (store.trim() ? JSON.parse(store) : {}) as Record<string, { Account?: unknown; Certificates?: { domain?: { main?: string } }[] | null }>;
  const mine = data[resolver] ?? {};
  const names = new Set(certificates.map((c) => c.host));
  const b64 = (pem: string) => Buffer.from(pem).toString("base64");
  data[resolver] = {
    Account: mine.Account ?? null,
    Certificates: [
      ...(mine.Certificates ?? []).filter((c) => !names.has(c.domain?.main ?? "")),
      ...certificates.map((c) => ({ domain: { main: c.host }, certificate: b64(c.certificatePem), key: b64(c.privateKeyPem), Store: "default" })),
    ],
  };
  return `${JSON.stringify(data, null, 2)}\n`;
}

/** Whether the image's Traefik knows entrypoint `keepAliveMaxTime` (added in v2.11): any
 * tag but an older numbered release. */
export function knowsKeepAliveMax(image: string): boolean {
  const tag = /:v?(\d+)\.(\d+)[^:/]*$/.exec(image);
  return !tag || Number(tag[1]) > 2 || (Number(tag[1]) === 2 && Number(tag[2]) >= 11);
}

/** Traefik args Kamal 1 starts with, plus HTTPS, trusted forwarded headers and the
 * maintenance plugin when configured; the user's `args` override them key by key. */
export function traefikArgs(cfg: Pick<TraefikContainerConfig, "apiPort" | "args" | "image" | "tls" | "forwardedHeaders">): string[] {
  const web = webEntrypoint(cfg.args);
  const secure = secureEntrypoint(cfg);
  const entrypoints = [web.name, ...(secure ? [secure.name] : [])];
  const tls: Record<string, string | number | boolean> = {};
  if (secure?.ours) tls[`entrypoints.${secure.name}.address`] = ":443";
  if (secure && knowsKeepAliveMax(cfg.image)) tls[`entrypoints.${secure.name}.transport.keepAliveMaxTime`] = `${KEEPALIVE_MAX_SECONDS}s`;
  if (secure && cfg.tls?.redirect) {
    tls[`entrypoints.${web.name}.http.redirections.entrypoint.to`] = secure.name;
    tls[`entrypoints.${web.name}.http.redirections.entrypoint.scheme`] = "https";
    tls[`entrypoints.${web.name}.http.redirections.entrypoint.permanent`] = true;
  }
  const acme = cfg.tls?.acme;
  if (acme) {
    const r = `certificatesresolvers.${acme.resolver}.acme`;
    tls[`${r}.storage`] = `${ACME_IN_TRAEFIK}/acme.json`;
    tls[`${r}.caserver`] = acme.caServer;
    if (acme.email) tls[`${r}.email`] = acme.email;
    if (acme.caCertificates) tls[`${r}.cacertificates`] = `${ACME_IN_TRAEFIK}/ca.pem`;
    if (acme.challenge === "http") tls[`${r}.httpchallenge.entrypoint`] = web.name;
    else tls[`${r}.tlschallenge`] = true;
  }
  const forwarded: Record<string, string | number | boolean> = {};
  for (const e of cfg.forwardedHeaders ? entrypoints : []) {
    if (cfg.forwardedHeaders === true) forwarded[`entrypoints.${e}.forwardedheaders.insecure`] = true;
    else forwarded[`entrypoints.${e}.forwardedheaders.trustedips`] = (cfg.forwardedHeaders as string[]).join(",");
  }
  const args: Record<string, string | number | boolean> = {
    "providers.docker": true,
    // Routes the provider writes for each scope (a swap switches traffic by rewriting one).
    "providers.file.directory": ROUTES_IN_TRAEFIK,
    "providers.file.watch": true,
    // Apply a changed route file or health status within 50ms instead of Traefik's 2s: a
    // swap waits for it.
    "providers.providersThrottleDuration": "50ms",
    // Traefik closes a connection to an app container once it has been idle 1s (Go's
    // default is 90s): a connection it opened but never used keeps a Go app's graceful
    // shutdown waiting 5s, so the old container of a swap would stop that much later.
    "serverstransport.forwardingtimeouts.idleconntimeout": "1s",
    ...(web.ours ? { "entrypoints.http.address": ":80" } : {}),
    ...(knowsKeepAliveMax(cfg.image) ? { [`entrypoints.${web.name}.transport.keepAliveMaxTime`]: `${KEEPALIVE_MAX_SECONDS}s` } : {}),
    ...tls,
    ...forwarded,
    ...(cfg.apiPort ? { "api.insecure": true, "entrypoints.traefik.address": ":8080" } : {}),
    // Maintenance pages and forwarded headers per route (commands/traefikPlugin.ts).
    [`experimental.localplugins.${PLUGIN_NAME}.modulename`]: PLUGIN_MODULE,
    "log.level": "INFO",
    ...cfg.args,
  };
  return Object.entries(args).map(([k, v]) => (v === true ? `--${k}` : `--${k}=${v}`));
}

/** The ports that take traffic: the web port, and the HTTPS one with tls. */
function trafficPublish(cfg: Pick<TraefikContainerConfig, "hostPort" | "tls">): string[] {
  const web = typeof cfg.hostPort === "number" || !String(cfg.hostPort).includes(":") ? `${cfg.hostPort}:80` : String(cfg.hostPort);
  return [web, ...(cfg.tls ? [`${cfg.tls.hostPort}:443`] : [])];
}

export function traefikPublish(cfg: Pick<TraefikContainerConfig, "hostPort" | "apiPort" | "tls">): string[] {
  // The API answers the provider's routing checks: bound to the host's loopback only.
  return [...trafficPublish(cfg), ...(cfg.apiPort ? [`127.0.0.1:${cfg.apiPort}:8080`] : [])];
}

/** The ports Traefik publishes for traffic: the web port, and any the user's `options`
 * publish (Kamal 1's Let's Encrypt recipe: `publish: ["443:443"]`), each as the host side
 * ("443", "10.0.0.5:443") and the container port. */
export function trafficPorts(cfg: Pick<TraefikContainerConfig, "hostPort" | "apiPort" | "options" | "tls">): { host: string; container: number }[] {
  const extra = [cfg.options.publish ?? [], cfg.options.p ?? []].flat().filter((v) => v !== true && v !== false).map(String);
  const out: { host: string; container: number }[] = [];
  for (const spec of [...trafficPublish(cfg), ...extra]) {
    const m = /^(?:(.+):)?(\d+):(\d+)(\/tcp)?$/.exec(spec) ?? /^()(\d+)()$/.exec(spec);
    if (!m) continue; // a UDP or range publish: not redirected
    out.push({ host: m[1] ? `${m[1]}:${m[2]}` : m[2], container: Number(m[3] || m[2]) });
  }
  return out;
}

/** The user's options without published ports: for a Traefik that must not take any. */
function unpublished(options: TraefikContainerConfig["options"]): TraefikContainerConfig["options"] {
  const { publish: _publish, p: _p, ...rest } = options;
  return rest;
}

/** A Traefik container's name, env file and host directories. */
export interface TraefikPlacement {
  name: string;
  envFile?: string;
  dirs: TraefikDirs;
}

/** `docker create` of Traefik: the new one is made ready before the old one stops, so the
 * port is free for the shortest time. It joins `networks` too (created if missing), so it
 * reaches apps that run on them (Kamal 2's `kamal`). */
export function createTraefik(cfg: TraefikContainerConfig, at: TraefikPlacement): Command {
  const parts = [createOnly(cfg, at), ...cfg.networks.flatMap((n) => joinNetwork(n, at.name))];
  return Command.composed(parts.map((p) => p.text).join(" && "), parts);
}

/** A trial run of the new configuration that touches nothing serving: the same image,
 * arguments, env and mounts, no published port, no network, no restart. A configuration
 * Traefik refuses (an unknown option, a bad address) makes it exit at once. */
export function trialTraefik(cfg: TraefikContainerConfig, at: TraefikPlacement): Command {
  // No user labels: the running Traefik reads container labels and must not route to it.
  // The ACME store read only: a trial never writes certificates.
  const spec = traefikSpec(cfg, at, true);
  return runContainer({ ...spec, createOnly: false, restart: undefined, publish: [], labels: { "traefik.enable": "false" }, options: { ...unpublished(cfg.options), network: "none" } });
}

/** How long a client may keep one connection to Traefik before it is told, after a response,
 * to reconnect (Traefik's keepAliveMaxTime): so that when a handover sends new connections
 * elsewhere, every busy client moves there between two requests, and the Traefik that
 * stops has no connection on which a request could cross its closing. */
export const KEEPALIVE_MAX_SECONDS = 2;

/** The bridge of a handover (see commands/portRedirect.ts): the new configuration, running
 * without a published port (new connections reach it by a redirect), on the same networks
 * as the new Traefik, routed by no other Traefik, not restarted by Docker. */
export function bridgeTraefik(cfg: TraefikContainerConfig, at: TraefikPlacement): Command {
  const spec = traefikSpec(cfg, at);
  const create = runContainer({
    ...spec,
    restart: undefined,
    publish: [],
    labels: { "traefik.enable": "false" },
    options: unpublished(cfg.options),
  });
  const parts = [create, ...cfg.networks.flatMap((n) => joinNetwork(n, at.name)), startContainer(at.name)];
  return Command.composed(parts.map((p) => p.text).join(" && "), parts);
}

/** A network (created first if missing) joined by a created container. */
function joinNetwork(network: string, container: string): Command[] {
  return [ensureNetwork(network), Command.change(["docker", "network", "connect", network, container], { repeatable: true })];
}

function createOnly(cfg: TraefikContainerConfig, at: TraefikPlacement): Command {
  return runContainer(traefikSpec(cfg, at));
}

function traefikSpec(cfg: TraefikContainerConfig, at: TraefikPlacement, trial = false) {
  return {
    createOnly: true,
    name: at.name,
    image: cfg.image,
    restart: "unless-stopped" as string | undefined,
    publish: traefikPublish(cfg),
    env: cfg.env,
    envFile: at.envFile,
    volumes: [
      "/var/run/docker.sock:/var/run/docker.sock",
      `${at.dirs.routes}:${ROUTES_IN_TRAEFIK}:ro`,
      ...(cfg.tls?.acme ? [`${at.dirs.acme}:${ACME_IN_TRAEFIK}${trial ? ":ro" : ""}`] : []),
      `${at.dirs.plugins}:${PLUGINS_IN_TRAEFIK}:ro`,
    ],
    labels: cfg.labels,
    options: cfg.options,
    cmd: traefikArgs(cfg),
  };
}

/** Kamal 2's kamal-proxy stops (draining within `stopWait` seconds) and keeps its name, so
 * that Kamal could start it again; `incoming` becomes the host's Traefik and starts. */
export function replaceKamalProxy(kamalProxy: string, incoming: string, stopWait: number): Command {
  return Command.allOf(stopContainer(kamalProxy, stopWait), renameContainer(incoming, TRAEFIK_NAME), startContainer(TRAEFIK_NAME));
}

/** The name of the host's Traefik container (Kamal's). */
export const TRAEFIK_NAME = "traefik";

/** One remote command (no round trips while the port is closed): the running Traefik
 * (`name`) stops within `stopWait` seconds and steps aside as `aside`; `incoming` takes the
 * name and starts. Used for a change, and to put the previous one back. */
export function replaceTraefik(name: string, aside: string, incoming: string, stopWait: number): Command {
  return Command.allOf(stopContainer(name, stopWait), renameContainer(name, aside), renameContainer(incoming, name), startContainer(name));
}

/** Kamal's Traefik container: Docker provider reading container labels. */
import type { TraefikContainerConfig } from "../config/schemas";
import { ensureNetwork, renameContainer, runContainer, startContainer, stopContainer } from "./docker";
import { allOf, shellJoin } from "./shell";
import { ROUTES_IN_TRAEFIK } from "./proxy";

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

/** Whether the image's Traefik knows entrypoint `keepAliveMaxTime` (added in v2.11): any
 * tag but an older numbered release. */
export function knowsKeepAliveMax(image: string): boolean {
  const tag = /:v?(\d+)\.(\d+)[^:/]*$/.exec(image);
  return !tag || Number(tag[1]) > 2 || (Number(tag[1]) === 2 && Number(tag[2]) >= 11);
}

/** Traefik args Kamal 1 starts with; the user's `args` override them key by key. */
export function traefikArgs(cfg: Pick<TraefikContainerConfig, "apiPort" | "args" | "image">): string[] {
  const web = webEntrypoint(cfg.args);
  const args: Record<string, string | number | boolean> = {
    "providers.docker": true,
    // Routes the provider writes for each scope (a swap switches traffic by rewriting one).
    "providers.file.directory": ROUTES_IN_TRAEFIK,
    "providers.file.watch": true,
    // Apply a changed route file or health status within 50ms instead of Traefik's 2s: a
    // swap waits for it.
    "providers.providersThrottleDuration": "50ms",
    ...(web.ours ? { "entrypoints.http.address": ":80" } : {}),
    ...(knowsKeepAliveMax(cfg.image) ? { [`entrypoints.${web.name}.transport.keepAliveMaxTime`]: `${KEEPALIVE_MAX_SECONDS}s` } : {}),
    ...(cfg.apiPort ? { "api.insecure": true, "entrypoints.traefik.address": ":8080" } : {}),
    "log.level": "INFO",
    ...cfg.args,
  };
  return Object.entries(args).map(([k, v]) => (v === true ? `--${k}` : `--${k}=${v}`));
}

export function traefikPublish(cfg: Pick<TraefikContainerConfig, "hostPort" | "apiPort">): string[] {
  const web = typeof cfg.hostPort === "number" || !String(cfg.hostPort).includes(":") ? `${cfg.hostPort}:80` : String(cfg.hostPort);
  // The API answers the provider's routing checks: bound to the host's loopback only.
  return cfg.apiPort ? [web, `127.0.0.1:${cfg.apiPort}:8080`] : [web];
}

/** The ports Traefik publishes for traffic: the web port, and any the user's `options`
 * publish (Kamal 1's Let's Encrypt recipe: `publish: ["443:443"]`), each as the host side
 * ("443", "10.0.0.5:443") and the container port. */
export function trafficPorts(cfg: Pick<TraefikContainerConfig, "hostPort" | "apiPort" | "options">): { host: string; container: number }[] {
  const extra = [cfg.options.publish ?? [], cfg.options.p ?? []].flat().filter((v) => v !== true && v !== false).map(String);
  const out: { host: string; container: number }[] = [];
  for (const spec of [traefikPublish(cfg)[0], ...extra]) {
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

/** `docker create` of Traefik: the new one is made ready before the old one stops, so the
 * port is free for the shortest time. It joins `networks` too (created if missing), so it
 * reaches apps that run on them (Kamal 2's `kamal`). */
export function createTraefik(cfg: TraefikContainerConfig, at: { name: string; envFile?: string; routesDir: string }): string {
  const connect = cfg.networks.map((n) => `${ensureNetwork(n)} && ${shellJoin(["docker", "network", "connect", n, at.name])}`);
  return [createOnly(cfg, at), ...connect].join(" && ");
}

/** A trial run of the new configuration that touches nothing serving: the same image,
 * arguments, env and mounts, no published port, no network, no restart. A configuration
 * Traefik refuses (an unknown option, a bad address) makes it exit at once. */
export function trialTraefik(cfg: TraefikContainerConfig, at: { name: string; envFile?: string; routesDir: string }): string {
  // No user labels: the running Traefik reads container labels and must not route to it.
  const spec = traefikSpec(cfg, at);
  return runContainer({ ...spec, createOnly: false, restart: undefined, publish: [], labels: { "traefik.enable": "false" }, options: { ...unpublished(cfg.options), network: "none" } });
}

/** How long a client may keep one connection to Traefik before it is told, after a response,
 * to reconnect (Traefik's keepAliveMaxTime): so that when a handover sends new connections
 * elsewhere, every busy client moves there between two requests, and the Traefik that
 * stops has no connection on which a request could cross its closing. */
export const KEEPALIVE_MAX_SECONDS = 2;

/** The bridge of a handover (see commands/handover.ts): the new configuration, running
 * without a published port (new connections reach it by a redirect), on the same networks
 * as the new Traefik, routed by no other Traefik, not restarted by Docker. */
export function bridgeTraefik(cfg: TraefikContainerConfig, at: { name: string; envFile?: string; routesDir: string }): string {
  const spec = traefikSpec(cfg, at);
  const create = runContainer({
    ...spec,
    restart: undefined,
    publish: [],
    labels: { "traefik.enable": "false" },
    options: unpublished(cfg.options),
  });
  const connect = cfg.networks.map((n) => `${ensureNetwork(n)} && ${shellJoin(["docker", "network", "connect", n, at.name])}`);
  return [create, ...connect, startContainer(at.name)].join(" && ");
}

function createOnly(cfg: TraefikContainerConfig, at: { name: string; envFile?: string; routesDir: string }): string {
  return runContainer(traefikSpec(cfg, at));
}

function traefikSpec(cfg: TraefikContainerConfig, at: { name: string; envFile?: string; routesDir: string }) {
  return {
    createOnly: true,
    name: at.name,
    image: cfg.image,
    restart: "unless-stopped" as string | undefined,
    publish: traefikPublish(cfg),
    env: cfg.env,
    envFile: at.envFile,
    volumes: ["/var/run/docker.sock:/var/run/docker.sock", `${at.routesDir}:${ROUTES_IN_TRAEFIK}:ro`],
    labels: cfg.labels,
    options: cfg.options,
    cmd: traefikArgs(cfg),
  };
}

/** Kamal 2's kamal-proxy stops (draining within `stopWait` seconds) and keeps its name, so
 * that Kamal could start it again; `incoming` becomes the host's Traefik and starts. */
export function replaceKamalProxy(kamalProxy: string, incoming: string, stopWait: number): string {
  return allOf(stopContainer(kamalProxy, stopWait), renameContainer(incoming, TRAEFIK_NAME), startContainer(TRAEFIK_NAME));
}

/** The name of the host's Traefik container (Kamal's). */
export const TRAEFIK_NAME = "traefik";

/** One remote command (no round trips while the port is closed): the running Traefik
 * (`name`) stops within `stopWait` seconds and steps aside as `aside`; `incoming` takes the
 * name and starts. Used for a change, and to put the previous one back. */
export function replaceTraefik(name: string, aside: string, incoming: string, stopWait: number): string {
  return allOf(stopContainer(name, stopWait), renameContainer(name, aside), renameContainer(incoming, name), startContainer(name));
}

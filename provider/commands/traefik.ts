/** Kamal's Traefik container: Docker provider reading container labels. */
import type { TraefikContainerConfig } from "../config/schemas";
import { ensureNetwork, renameContainer, runContainer, startContainer, stopContainer } from "./docker";
import { allOf, shellJoin } from "./shell";
import { ROUTES_IN_TRAEFIK } from "./proxy";

/** Traefik args Kamal 1 starts with; the user's `args` override them key by key. */
export function traefikArgs(cfg: Pick<TraefikContainerConfig, "apiPort" | "args">): string[] {
  const args: Record<string, string | number | boolean> = {
    "providers.docker": true,
    // Routes the provider writes for each scope (a swap switches traffic by rewriting one).
    "providers.file.directory": ROUTES_IN_TRAEFIK,
    "providers.file.watch": true,
    // Apply a changed route file or health status within 50ms instead of Traefik's 2s: a
    // swap waits for it.
    "providers.providersThrottleDuration": "50ms",
    "entrypoints.http.address": ":80",
    "entrypoints.http.transport.keepAliveMaxTime": `${KEEPALIVE_MAX_SECONDS}s`,
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
  return runContainer({ ...spec, createOnly: false, restart: undefined, publish: [], labels: { "traefik.enable": "false" }, options: { ...cfg.options, network: "none" } });
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

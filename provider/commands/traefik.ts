/** Kamal's Traefik container: Docker provider reading container labels. */
import type { TraefikContainerConfig } from "../config/schemas";
import { runContainer } from "./docker";

/** Traefik args Kamal 1 starts with; the user's `args` override them key by key. */
export function traefikArgs(cfg: Pick<TraefikContainerConfig, "apiPort" | "args">): string[] {
  const args: Record<string, string | number | boolean> = {
    "providers.docker": true,
    // Apply health changes within 200ms instead of Traefik's 2s: a swap waits for them.
    "providers.providersThrottleDuration": "200ms",
    "entrypoints.http.address": ":80",
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
 * port is free for the shortest time. */
export function createTraefik(cfg: TraefikContainerConfig, at: { name: string; envFile?: string }): string {
  return runContainer({
    createOnly: true,
    name: at.name,
    image: cfg.image,
    restart: "unless-stopped",
    publish: traefikPublish(cfg),
    env: cfg.env,
    envFile: at.envFile,
    volumes: ["/var/run/docker.sock:/var/run/docker.sock"],
    labels: cfg.labels,
    options: cfg.options,
    cmd: traefikArgs(cfg),
  });
}

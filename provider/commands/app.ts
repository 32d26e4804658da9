/**
 * Kamal's app conventions as argument fragments: container names, labels, health checks,
 * the cord, and the `docker run` of one role's container.
 */
import type { AppContainerConfig } from "../config/schemas";
import { CORD_IN_CONTAINER, runContainer } from "./docker";
import { shellJoin } from "./shell";

/** `service-role[-destination]`: Traefik router/service name and label scope. */
export function serviceRole(cfg: Pick<AppContainerConfig, "service" | "role" | "destination">): string {
  return [cfg.service, cfg.role, cfg.destination].filter(Boolean).join("-");
}

/** Container name: `service-role[-destination]-version`. */
export function containerName(cfg: Pick<AppContainerConfig, "service" | "role" | "destination" | "version">): string {
  return `${serviceRole(cfg)}-${cfg.version}`;
}

/** The labels every container of a role carries, by which it is always found. */
export function scopeLabels(cfg: Pick<AppContainerConfig, "service" | "role" | "destination">): Record<string, string> {
  return { service: cfg.service, role: cfg.role, ...(cfg.destination ? { destination: cfg.destination } : {}) };
}

/** Kamal 1's Traefik labels for a role behind Traefik, user labels applied over them. */
export function traefikLabels(cfg: Pick<AppContainerConfig, "service" | "role" | "destination" | "appPort">): Record<string, string> {
  const name = serviceRole(cfg);
  return {
    "traefik.enable": "true",
    [`traefik.http.routers.${name}.rule`]: "PathPrefix(`/`)",
    [`traefik.http.routers.${name}.entrypoints`]: "http",
    [`traefik.http.services.${name}.loadbalancer.server.port`]: String(cfg.appPort),
    [`traefik.http.middlewares.${name}-retry.retry.attempts`]: "5",
    [`traefik.http.middlewares.${name}-retry.retry.initialinterval`]: "500ms",
    [`traefik.http.routers.${name}.middlewares`]: `${name}-retry@docker`,
  };
}

export function appLabels(cfg: AppContainerConfig): Record<string, string> {
  return {
    ...scopeLabels(cfg),
    version: cfg.version,
    ...(cfg.traefik ? traefikLabels(cfg) : { "traefik.enable": "false" }),
    ...cfg.labels,
  };
}

/** The health command: the user's, or Kamal's curl probe; behind Traefik, also the cord. */
export function healthCommand(cfg: AppContainerConfig): string | undefined {
  const hc = cfg.healthcheck;
  if (!hc) return undefined;
  const probe = hc.cmd ?? shellJoin(["curl", "-f", `http://localhost:${hc.port}${hc.path}`]);
  if (!cfg.traefik) return probe;
  return `(${probe}) && (stat ${CORD_IN_CONTAINER}/cord > /dev/null || exit 1)`;
}

export interface AppRunPlacement {
  name: string;
  /** Host directory of this container's cord, when behind Traefik. */
  cordDir?: string;
  /** Absolute path of the role's env file on the host. */
  envFile?: string;
}

export function runAppContainer(cfg: AppContainerConfig, at: AppRunPlacement): string {
  const health = healthCommand(cfg);
  return runContainer({
    name: at.name,
    image: `${cfg.image}:${cfg.version}`,
    restart: "unless-stopped",
    env: { ...cfg.env, KAMAL_CONTAINER_NAME: at.name, KAMAL_VERSION: cfg.version },
    envFile: at.envFile,
    volumes: [...(at.cordDir ? [`${at.cordDir}:${CORD_IN_CONTAINER}`] : []), ...cfg.volumes],
    labels: appLabels(cfg),
    health: health ? { cmd: health, interval: cfg.healthcheck!.interval, retries: cfg.healthcheck!.retries } : undefined,
    logging: cfg.logging,
    options: cfg.options,
    cmd: cfg.cmd,
  });
}

/**
 * The release command's one-off container: Kamal's app env, the role's env, env file,
 * volumes and options, the new image; detached, so that a dropped connection does not stop
 * it (the next attempt finds it by name and waits for it).
 */
import { Command } from "./command";
import type { ReleaseConfig } from "../config/schemas";
import { kamalEnv, serviceRole } from "./app";
import { runContainer } from "./docker";

/** `service-role[-destination]-release-version`: one per scope and version at a time. */
export function releaseContainerName(cfg: Pick<ReleaseConfig, "service" | "role" | "destination" | "version">): string {
  return `${serviceRole(cfg)}-release-${cfg.version}`;
}

/** The labels of a release container: its service and destination (so scope listings see it
 * as no role's container), and the version it releases. */
export function releaseLabels(cfg: Pick<ReleaseConfig, "service" | "destination" | "version">): Record<string, string> {
  return { service: cfg.service, destination: cfg.destination ?? "", "kamal.release": cfg.version };
}

export function runRelease(cfg: ReleaseConfig, at: { name: string; envFile?: string }): Command {
  return runContainer({
    name: at.name,
    image: `${cfg.image}:${cfg.version}`,
    env: kamalEnv(cfg, at.name),
    envFile: at.envFile,
    volumes: cfg.volumes,
    labels: releaseLabels(cfg),
    options: cfg.options,
    cmd: cfg.cmd,
  });
}

/**
 * What the operator's commands (`pulumi-kamal details | logs | exec | app | accessory |
 * proxy | server | registry`) run on a host: pure builders, every word quoted by shellJoin.
 */
import { Command } from "./command";
import type { AppContainerConfig } from "../config/schemas";
import { kamalEnv, serviceRole } from "./app";
import { envArgs, runContainer, type DockerOptionValue } from "./docker";
import { shellJoin } from "./shell";

/** One line per container of a scope: name, state, health, start time, image, version. */
export function describeContainers(names: readonly string[]): Command {
  return Command.read(`${shellJoin([
    "docker", "container", "inspect", "--format",
    '{{.Name}}\t{{.State.Status}}\t{{if .State.Health}}{{.State.Health.Status}}{{end}}\t{{.State.StartedAt}}\t{{.Image}}\t{{.Config.Image}}\t{{index .Config.Labels "version"}}\t{{.RestartCount}}',
    ...names,
  ])} 2>/dev/null`);
}

/** An image's repository digests ("repo@sha256:…"), space-separated. */
export function repoDigests(imageId: string): Command {
  return Command.read(["docker", "image", "inspect", "--format", "{{range .RepoDigests}}{{.}} {{end}}", imageId]);
}

export interface LogsOptions {
  follow?: boolean;
  /** Docker's --since: "10m", "2026-12-02T10:00:00Z"… */
  since?: string;
  lines?: number;
}

/** A container's output, both streams, each line with Docker's timestamp. The filter by
 * regexp is applied by the caller, on the operator's side (no pattern reaches a shell). */
export function logs(name: string, o: LogsOptions = {}): Command {
  const argv = ["docker", "logs", "--timestamps"];
  if (o.since) argv.push("--since", o.since);
  if (o.lines !== undefined) argv.push("--tail", String(o.lines));
  if (o.follow) argv.push("--follow");
  argv.push(name);
  return Command.read(`${shellJoin(argv)} 2>&1`);
}

/** `service-role[-destination]-exec-<version>-<hex>`: a one-off container's name. */
export function execContainerName(cfg: Pick<AppContainerConfig, "service" | "role" | "destination" | "version">, hex: string): string {
  return `${serviceRole(cfg)}-exec-${cfg.version}-${hex}`;
}

/**
 * Kamal's `kamal app exec`: a one-off container of the deployed version with the role's env,
 * secret env file, volumes and options (removed when it exits), or, with `reuse`, the command
 * inside the running container (`docker exec`, which has its env already). `interactive`
 * attaches a terminal (the caller opens the session with one).
 */
export function execCommand(
  cfg: Pick<AppContainerConfig, "service" | "role" | "destination" | "version" | "image" | "connection" | "env" | "volumes" | "options">,
  cmd: readonly string[],
  at: { name: string; envFile?: string; reuse?: string; interactive?: boolean; env?: Record<string, string>; detach?: boolean },
): Command {
  // The operator's command: whatever it does, it never runs twice.
  if (at.reuse) return Command.change(["docker", "exec", ...(at.interactive ? ["--interactive", "--tty"] : []), ...envArgs(at.env), at.reuse, ...cmd], { repeatable: false });
  const { detach: _d, restart: _r, publish: _p, p: _p2, name: _n, ...options } = cfg.options as Record<string, DockerOptionValue>;
  return runContainer({
    name: at.name,
    image: `${cfg.image}:${cfg.version}`,
    // Kamal's --detach: left running in the background, kept after it exits (no --rm).
    detach: !!at.detach,
    env: { ...kamalEnv(cfg, at.name), ...(at.env ?? {}) },
    envFile: at.envFile,
    volumes: cfg.volumes,
    // Its service and destination, no role: no scope counts it as one of its containers.
    labels: { service: cfg.service, destination: cfg.destination ?? "", "kamal.exec": cfg.version },
    options: { ...options, ...(at.detach ? {} : { rm: true }), ...(at.interactive ? { interactive: true, tty: true } : {}) },
    cmd,
  });
}

/** Kamal's `app stop|start`, `accessory stop|start|restart`, `proxy stop|start|restart`:
 * one container's lifecycle, by name. */
export function containerLifecycle(action: "stop" | "start" | "restart", name: string, stopWaitTime?: number): Command {
  const wait = action !== "start" && stopWaitTime !== undefined ? ["--time", String(Math.ceil(stopWaitTime))] : [];
  return Command.change(["docker", action, ...wait, name], { repeatable: true, waitSeconds: wait.length ? stopWaitTime : 0 });
}

/** Kamal's `app containers` / `accessory details` / `proxy details`: every container of a
 * scope (by its labels), running or not, as `docker container ls` prints them. */
export function listContainers(labels: Record<string, string>): Command {
  return Command.read(["docker", "container", "ls", "--all", ...Object.entries(labels).flatMap(([k, v]) => ["--filter", `label=${k}=${v}`])]);
}

/** Kamal's `app images`: the images of a repository on the host. */
export function listImages(repository: string): Command {
  return Command.read(["docker", "image", "ls", repository]);
}

/** Kamal's `prune images`, its first half: the service's dangling (untagged, unused) images. */
export function pruneDanglingImages(service: string): Command {
  return Command.change(["docker", "image", "prune", "--force", "--filter", `label=service=${service}`], { repeatable: true });
}

/** Kamal's `server exec`: the operator's command on the host itself (its words quoted). */
export function hostCommand(cmd: readonly string[]): Command {
  return Command.change(cmd.length === 1 ? cmd[0] : shellJoin(cmd), { repeatable: false, engine: false });
}

/** Kamal's `registry logout`. */
export function dockerLogout(server: string): Command {
  return Command.change(["docker", "logout", server], { repeatable: true });
}

/** Kamal's `accessory exec --reuse`: the operator's command inside a running container. */
export function execIn(container: string, cmd: readonly string[]): Command {
  return Command.change(["docker", "exec", container, ...cmd], { repeatable: false });
}

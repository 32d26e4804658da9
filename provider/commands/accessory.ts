/** Kamal's accessory container: long-lived, its data in the SSH user's home. */
import { Command } from "./command";
import type { AccessoryContainerConfig } from "../config/schemas";
import { runContainer } from "./docker";

/** `service-name` (or the explicit container name): Kamal 1's accessory container name and
 * data directory. */
export function accessoryName(cfg: Pick<AccessoryContainerConfig, "service" | "name" | "containerName">): string {
  return cfg.containerName ?? `${cfg.service}-${cfg.name}`;
}

export function accessoryPublish(port: AccessoryContainerConfig["port"]): string[] {
  if (port === undefined) return [];
  const p = String(port);
  return [p.includes(":") ? p : `${p}:${p}`];
}

/** Host paths of uploaded files and created directories, and their mounts. */
export function accessoryMounts(cfg: AccessoryContainerConfig, dataDir: string) {
  const files = cfg.files.map((f) => ({ ...f, host: `${dataDir}${f.target}` }));
  const directories = cfg.directories.map((d) => {
    const { path, mode, owner } = typeof d === "string" ? { path: d, mode: undefined, owner: undefined } : d;
    const [hostDir, target, options] = path.split(":");
    return { host: hostDir.startsWith("/") ? hostDir : `${dataDir}/${hostDir}`, target, options, mode, owner };
  });
  const mount = (host: string, target: string, options?: string) => `${host}:${target}${options ? `:${options}` : ""}`;
  const volumes = [
    ...files.map((f) => mount(f.host, f.target, f.options)),
    ...directories.map((d) => mount(d.host, d.target, d.options)),
    ...cfg.volumes,
  ];
  return { files, directories, volumes };
}

/** `docker run` of the accessory; with `as` and `createOnly`, a prepared copy under another
 * name (a reboot creates the new container before the old one stops). */
export function runAccessory(cfg: AccessoryContainerConfig, at: { dataDir: string; envFile?: string; as?: string; createOnly?: boolean }): Command {
  return runContainer({
    name: at.as ?? accessoryName(cfg),
    createOnly: at.createOnly,
    image: cfg.image,
    restart: "unless-stopped",
    publish: accessoryPublish(cfg.port),
    env: cfg.env,
    envFile: at.envFile,
    volumes: accessoryMounts(cfg, at.dataDir).volumes,
    labels: { service: accessoryName(cfg), "traefik.enable": "false", ...cfg.labels },
    options: cfg.options,
    cmd: cfg.cmd,
  });
}

/** Kamal's `chmod` / `chown` of an accessory's host directory or file, after it is written. */
export function setPermissions(path: string, p: { mode?: string; owner?: string }): Command[] {
  return [
    ...(p.mode ? [Command.change(["chmod", p.mode, path], { repeatable: true, engine: false })] : []),
    ...(p.owner ? [Command.change(["chown", p.owner, path], { repeatable: true, engine: false })] : []),
  ];
}

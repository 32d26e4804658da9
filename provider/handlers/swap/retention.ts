/**
 * What a scope keeps on its host: its containers (found by their exact labels), the
 * retained earlier versions with their images, and the newest failed container only.
 */
import type { AppContainerConfig } from "../../config/schemas";
import { copyKind, pruneList, scopeOf, type ScopeContainer } from "../../commands/app";
import * as docker from "../../commands/docker";
import type { SshConnection } from "../../ssh/executor";
import { lines, progress } from "../common";

/** The scope's containers on the host, newest first. Containers of an earlier release of
 * this tool carry no destination label: they read as "no destination", as Kamal's do. */
export async function scopeContainers(conn: SshConnection, cfg: AppContainerConfig): Promise<ScopeContainer[]> {
  const scope = scopeOf(cfg);
  const out = (await conn.exec(docker.serviceContainers(cfg.service))).stdout;
  return lines(out).flatMap((l) => {
    const [name, state, role, destination = "", version = ""] = l.split("\t");
    if (role !== scope.role || destination !== scope.destination) return [];
    return [{ name, running: state === "running" || state === "restarting", version }];
  });
}

/**
 * Retention by version: besides the serving container, the `retain` most recent earlier
 * versions that served here are kept stopped, with their images (a rollback needs no
 * registry). Replaced copies of a version never count; of failed containers only the
 * newest is kept, for its logs.
 */
export async function prune(conn: SshConnection, cfg: AppContainerConfig, serving: string, listed: ScopeContainer[]) {
  const excess = pruneList(listed, serving, cfg.version, cfg.retain);
  if (!excess.length) return;
  progress(cfg.hostName, `pruning ${excess.join(", ")}`);
  await conn.run(docker.removeContainers(excess));
  // Only a removed container can leave an image unused.
  await pruneImages(conn, cfg);
}

/** After a failed deploy: only the newest failed container of the scope is kept. */
export async function pruneFailed(conn: SshConnection, cfg: AppContainerConfig, newest: string) {
  const older = (await scopeContainers(conn, cfg)).filter((c) => copyKind(c.name) === "failed" && c.name !== newest && !c.running).map((c) => c.name);
  if (older.length) await conn.run(docker.removeContainers(older));
}

/** Images of the service's repository that no container on the host uses any more. */
export async function pruneImages(conn: SshConnection, cfg: AppContainerConfig) {
  const [inUseOut, ofImage] = await Promise.all([conn.run(docker.imagesInUse()), conn.run(docker.imagesOf(cfg.image))]);
  const inUse = new Set(lines(inUseOut.stdout));
  const unused = lines(ofImage.stdout).filter((ref) => !inUse.has(ref) && !ref.endsWith(":<none>"));
  if (unused.length) await conn.run(docker.removeImages(unused));
}

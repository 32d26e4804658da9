/**
 * Which builder builds which platform, as Kamal 2 decides it: without a remote builder the
 * local one builds everything; with one, the local builder takes the platform of this
 * machine (unless `local` is false) and the remote the rest; both at once make a hybrid
 * builder, one buildx builder with a node on each engine.
 */
import { builderName } from "../commands/build";
import type { ImageBuildConfig } from "../config/image";

export interface BuilderPlan {
  /** Every platform asked for (none: the builder's own). */
  platforms: string[];
  /** The buildx builder (--builder); none for the docker driver, whose engine builds. */
  builder?: string;
  local?: { platforms: string[] };
  remote?: { platforms: string[]; name?: string };
}

/** Kamal's name for a remote builder: its `ssh://user@host[:port]`. */
export function remoteUri(c: { host: string; user: string; port: number }): string {
  return `ssh://${c.user}@${c.host}${c.port === 22 ? "" : `:${c.port}`}`;
}

export function planBuilders(cfg: Pick<ImageBuildConfig, "platforms" | "driver" | "remote" | "local" | "repository">, localArch: string): BuilderPlan | { refused: string } {
  const platforms = cfg.platforms;
  if (!cfg.remote) {
    return { platforms, builder: builderName(cfg), local: { platforms } };
  }
  const native = `linux/${localArch}`;
  const local = cfg.local === false ? [] : platforms.filter((p) => p === native);
  const remote = platforms.filter((p) => !local.includes(p));
  const uri = remoteUri(cfg.remote.connection);
  if (platforms.length === 0) {
    // No platform named: the local builder's own, unless only the remote may build.
    return cfg.local === false
      ? { platforms, builder: cfg.driver === "docker" ? undefined : builderName(cfg, { remote: uri, local: false }), remote: { platforms, name: builderName(cfg, { remote: uri, local: false }) } }
      : { platforms, builder: builderName(cfg), local: { platforms } };
  }
  if (remote.length === 0) return { platforms, builder: builderName(cfg), local: { platforms } };
  if (local.length === 0) {
    const name = builderName(cfg, { remote: uri, local: false });
    return { platforms, builder: cfg.driver === "docker" ? undefined : name, remote: { platforms: remote, name } };
  }
  if (cfg.driver === "docker") {
    return { refused: `platforms: ${local.join(", ")} here and ${remote.join(", ")} on ${uri} make one image only with the docker-container driver (the docker driver's engines cannot share a build)` };
  }
  const name = builderName(cfg, { remote: uri, local: true })!;
  return { platforms, builder: name, local: { platforms: local }, remote: { platforms: remote, name } };
}

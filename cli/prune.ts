/**
 * `pulumi-kamal prune containers|images|all [--retain N]`: Kamal's prune with this tool's
 * retention, per role and host, under the service's deploy lock (Kamal's prune takes it too):
 * stopped containers beyond the last N versions that served there (default: the role's
 * `retainContainers`; replaced copies always, failed ones all but the newest), then the
 * service's images that no container uses and its dangling ones. Each host's audit log gets
 * Kamal's line ("Pruned containers", "Pruned images").
 */
import { pruneList } from "../provider/commands/app";
import { removeContainers } from "../provider/commands/docker";
import { pruneDanglingImages } from "../provider/commands/operator";
import { audit } from "../provider/handlers/common";
import { withLock } from "../provider/handlers/lock";
import { pruneImages, scopeContainers } from "../provider/handlers/swap/retention";
import { connect, eachHost, type HostError } from "./remote";
import { selectApps, type Filters } from "./select";
import type { Deployed } from "./stack";
import { UsageError } from "./usage";

export async function prune(what: string, d: Deployed, f: Filters, retain: number | undefined, write: (line: string) => void): Promise<HostError[]> {
  if (what !== "containers" && what !== "images" && what !== "all") throw new UsageError("prune needs one of: containers, images, all");
  if (retain !== undefined && retain < 1) throw new UsageError("--retain must be at least 1 (the last version that served is what a rollback needs)");
  const apps = selectApps(d, f);
  if (!apps.length) throw new UsageError(`stack ${d.stack} has no app containers`);
  const { errors } = await eachHost(apps, `pruning ${what}`, async (a) => {
    const cfg = a.cfg;
    const conn = await connect(cfg.connection);
    const scope = { service: cfg.service, destination: cfg.destination, role: cfg.role, runDirectory: cfg.runDirectory };
    await withLock(conn, { host: cfg.hostName, service: cfg.service, destination: cfg.destination, version: cfg.version, waitSeconds: cfg.lockWait, runDirectory: cfg.runDirectory }, async () => {
      if (what !== "images") {
        const excess = pruneList(await scopeContainers(conn, cfg), a.container, cfg.version, retain ?? cfg.retain);
        if (excess.length) await conn.exec(removeContainers(excess));
        write(`${cfg.hostName}: ${excess.length ? `removed ${excess.join(", ")}` : `no ${cfg.role} container to remove`} (${retain ?? cfg.retain} earlier version${(retain ?? cfg.retain) === 1 ? "" : "s"} kept)`);
        await audit(conn, cfg.hostName, scope, "Pruned containers");
      }
      if (what !== "containers") {
        await pruneImages(conn, cfg);
        await conn.exec(pruneDanglingImages(cfg.service));
        write(`${cfg.hostName}: removed the images of ${cfg.image} no container uses`);
        await audit(conn, cfg.hostName, scope, "Pruned images");
      }
    });
  });
  return errors;
}

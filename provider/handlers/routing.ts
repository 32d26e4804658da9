/**
 * Asks the host's Traefik whether it routes to a container. Traefik applies Docker health
 * changes after its provider throttle (2s by default); the swap waits for the change to be
 * live instead of guessing. Without a reachable Traefik API it waits a fixed settle time.
 */
import * as docker from "../commands/docker";
import { shellJoin } from "../commands/shell";
import type { SshConnection } from "../ssh/executor";
import { progress } from "./common";

/** The Traefik container name Kamal uses, and the API port inside it. */
export const TRAEFIK_CONTAINER = "traefik";
export const TRAEFIK_API_CONTAINER_PORT = 8080;
const SETTLE_MS = 3000;
const ROUTE_DEADLINE_MS = 30_000;

export class TraefikRouting {
  private constructor(
    private readonly api: string | undefined,
    private readonly service: string,
  ) {}

  static async discover(conn: SshConnection, service: string): Promise<TraefikRouting> {
    const port = await conn.run(shellJoin(["docker", "port", TRAEFIK_CONTAINER, `${TRAEFIK_API_CONTAINER_PORT}/tcp`]));
    const addr = port.stdout.split("\n")[0]?.trim();
    const curl = await conn.run("command -v curl");
    if (port.code !== 0 || !addr || curl.code !== 0) return new TraefikRouting(undefined, service);
    return new TraefikRouting(`http://${addr.replace(/^0\.0\.0\.0:/, "127.0.0.1:")}`, service);
  }

  /** Waits until Traefik routes (present) or no longer routes (!present) to the container. */
  async waitRouted(conn: SshConnection, container: string, present: boolean, host: string): Promise<void> {
    if (!this.api) {
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      return;
    }
    const ip = (await conn.exec(docker.containerIp(container))).stdout.trim().split(" ")[0];
    const url = `${this.api}/api/http/services/${this.service}@docker`;
    const deadline = Date.now() + ROUTE_DEADLINE_MS;
    for (;;) {
      const r = await conn.run(shellJoin(["curl", "-fsS", "--max-time", "2", url]));
      const servers = r.code === 0 ? serverHosts(r.stdout) : [];
      if (servers.includes(ip) === present) return;
      if (Date.now() > deadline) {
        if (present) throw new Error(`Traefik did not start routing to ${container} (${ip}) within ${ROUTE_DEADLINE_MS / 1000}s`);
        progress(host, `Traefik still lists ${container} after ${ROUTE_DEADLINE_MS / 1000}s; stopping it anyway`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function serverHosts(json: string): string[] {
  try {
    const svc = JSON.parse(json) as { loadBalancer?: { servers?: { url?: string }[] } };
    return (svc.loadBalancer?.servers ?? []).map((s) => new URL(s.url ?? "http://invalid").hostname);
  } catch {
    return [];
  }
}

/**
 * An accessory behind the host's Traefik (Kamal 2's accessory `proxy`): one route file, named
 * for the accessory's container, pointing at the container's address on its network. Written
 * once the container runs (a boot, a reboot: its address may change), rewritten alone when
 * only the route changes, removed before the container is. The same route files, checks and
 * confirmation through Traefik's API as an app's (./routing.ts).
 */
import { routeFileSpec } from "../commands/app";
import type { AccessoryContainerConfig } from "../config/schemas";
import type { SshConnection } from "../ssh/executor";
import { progress, step } from "./common";
import { TraefikRouting } from "./routing";
import { waitReady } from "./swap/probes";
import { backendOf } from "./swap/traffic";

/** The route's name in Traefik (router, service, file): beside the apps' `service-role`. */
const routeName = (container: string) => `accessory-${container}`;

/** Points the accessory's route at its running container `container`. */
export async function routeAccessory(conn: SshConnection, cfg: AccessoryContainerConfig, container: string): Promise<void> {
  const proxy = cfg.proxy;
  if (!proxy) return;
  const host = cfg.hostName;
  const routing = await step(host, "finding the host's Traefik", () => TraefikRouting.discover(conn, routeName(container)));
  if (!routing?.byRoutes) {
    throw new Error(`accessory ${cfg.name}: proxy needs a Traefik with route files on ${host} (the one KamalApp and the Traefik component start): ${routing ? "this one routes by container labels only" : "none runs there"}`);
  }
  const { hostName, hosts, appPort: _port, healthcheck, ...options } = { hostName: host, ...proxy };
  const { spec, certificate, problems } = routeFileSpec({ hostName, routeHosts: hosts, proxy: options, maintenance: undefined }, routing.can);
  if (problems.length) throw new Error(problems.map((p) => `accessories.${cfg.name}.${p}`).join("; "));
  if (healthcheck) {
    const hc = { ...healthcheck, port: proxy.appPort, retries: 3 };
    await step(host, `waiting for ${container} to answer ${hc.path}`, () => waitReady(conn, { hostName: host, healthcheck: hc }, container));
  }
  const backend = await step(host, `reading the address of ${container}`, () => backendOf(conn, proxy, container));
  await step(host, "asking Traefik's API before changing the route", () => routing.confirmApi());
  await step(host, `routing ${hosts.join(", ")} to ${container}`, () => routing.routeTo({ ...spec, servers: [backend] }, certificate));
  progress(host, `${hosts.join(", ")} routed to ${container}`);
}

/** Removes the accessory's route (its container is about to go, or no longer has one). */
export async function unrouteAccessory(conn: SshConnection, cfg: AccessoryContainerConfig, container: string): Promise<void> {
  const routing = await TraefikRouting.discover(conn, routeName(container));
  if (!routing?.byRoutes) return;
  await step(cfg.hostName, `removing the route of ${container}`, () => routing.routeTo({ rule: "", servers: [] }));
  progress(cfg.hostName, `the route of ${container} removed`);
}

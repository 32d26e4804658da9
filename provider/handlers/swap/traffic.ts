/**
 * How the swap moves a scope's traffic on one host: the two routing modes behind one small
 * interface (probe, switch, withdraw, restore, restart, retire), so the swap's states read the
 * same whichever mode the host's Traefik allows.
 *
 * - route file: the swap probes the new container itself, then rewrites the scope's route to
 *   name it alone; traffic moves in one step, and goes back by writing the old route again.
 * - labels (Kamal 1's way, or no Traefik at all): Docker's health check decides; Traefik
 *   routes to every healthy container of the scope, and an old one leaves rotation when its
 *   cut cord turns it unhealthy.
 */
import { proxyErrorPages } from "../../commands/proxy";
import { randomBytes } from "node:crypto";
import type { AppContainerConfig } from "../../config/schemas";
import { routeOnlySettings, routeFileSpec, wantsLabelRouting } from "../../commands/app";
import * as docker from "../../commands/docker";
import { runDirectoryAt } from "../../commands/files";
import type { SshConnection } from "../../ssh/executor";
import { tail } from "../../ssh/redact";
import { progress, step } from "../common";
import type { TraefikRouting } from "../routing";
import { waitHealthy, waitReady, waitUnhealthy } from "./probes";

/** What the host's Traefik cannot do for the scope's route (a role routed by its labels
 * cannot have any route-file setting). */
export function routeProblems(cfg: AppContainerConfig, routing: TraefikRouting): string[] {
  if (!routing.byRoutes || wantsLabelRouting(cfg)) {
    const why = wantsLabelRouting(cfg) ? "its own traefik.* labels keep it on Kamal 1's label routing" : `the Traefik on ${cfg.hostName} routes by container labels only (Kamal 1's, or one started without route files)`;
    return routeOnlySettings(cfg).map((k) => `${k}: is applied through the scope's route file, but ${why}`);
  }
  return routeFileSpec(cfg, routing.can).problems;
}

export type ScopeRoute = Pick<ReturnType<typeof routeFileSpec>, "spec" | "certificate">;

/** The scope's route on this host's Traefik (route files): refused, before anything
 * changes, when that Traefik cannot serve it. */
export function checkedRoute(cfg: AppContainerConfig, routing: TraefikRouting): ScopeRoute {
  const problems = routeProblems(cfg, routing);
  if (problems.length) throw new Error(problems.join("; "));
  const { spec, certificate, notes } = routeFileSpec(cfg, routing.can);
  for (const n of notes) progress(cfg.hostName, n);
  return { spec, certificate };
}

/** Points the scope's route file at the running container `name`, at its address now (a
 * route change, or a container started again with another address). */
export async function routeRunning(conn: SshConnection, cfg: AppContainerConfig, routing: TraefikRouting, name: string): Promise<void> {
  const host = cfg.hostName;
  const route = await step(host, "checking the route", async () => checkedRoute(cfg, routing));
  const backend = await step(host, `reading the address of ${name}`, () => backendOf(conn, cfg, name));
  await step(host, "asking Traefik's API before changing the route", () => routing.confirmApi());
  await step(host, `changing the route of ${name}`, () => routing.routeTo({ ...route.spec, servers: [backend] }, route.certificate));
}

/** The backend URL of a container: its address on its first network, the app's port. */
export async function backendOf(conn: SshConnection, cfg: Pick<AppContainerConfig, "appPort">, name: string): Promise<string> {
  const ip = (await conn.exec(docker.containerIp(name))).stdout.trim().split(" ")[0];
  if (!ip) throw new Error(`container ${name} has no network address`);
  return `http://${ip}:${cfg.appPort}`;
}

/** Takes an old container out of rotation, then stops it with the stop wait time. One
 * routed by route file already is (the switch named only the new container); one routed
 * by its labels leaves when its cut cord turns it unhealthy. */
export async function retire(conn: SshConnection, cfg: AppContainerConfig, old: string, routing?: TraefikRouting) {
  if (cfg.traefik) {
    const cord = (await conn.run(docker.cordSource(old))).stdout.trim();
    if (cord) {
      progress(cfg.hostName, `cutting the cord of ${old}: its health check fails and Traefik drops it`);
      await conn.exec(docker.cutCord(cord));
      await waitUnhealthy(conn, cfg, old);
      if (routing) await routing.waitLabelRouted(old, false);
    }
  }
  progress(cfg.hostName, `stopping ${old} (up to ${cfg.stopWaitTime}s for in-flight requests)`);
  const stopped = await conn.run(docker.stopContainer(old, cfg.stopWaitTime));
  // Already gone (removed by hand, or by an earlier run that was cut short) is fine.
  if (stopped.code !== 0 && !/No such container/i.test(stopped.stderr)) {
    throw new Error(`docker stop ${old} failed (exit ${stopped.code}): ${tail(stopped.stderr, 5)}`);
  }
}

/** One routing mode of the swap on one host. */
export interface Traffic {
  /** How the new container is started: routed by the scope's route file, or by its labels. */
  readonly kind: "routes" | "labels";
  /** The cord directory the new container's health check depends on (labels only). */
  readonly cord?: string;
  /** Before the start: what the new container needs on the host (the cord). */
  prepare(): Promise<void>;
  /** Until the new container is ready to take traffic (its deadline: the health check's). */
  probe(name: string): Promise<void>;
  /** Traffic reaches the new container; `moving` is called once some may have. */
  switch(name: string, moving: () => void): Promise<void>;
  /** After a failure: the new container leaves (drained when it took traffic). */
  withdraw(name: string, switched: boolean): Promise<void>;
  /** After a failure: traffic goes back to the containers that served before. */
  restore(old: string[], switched: boolean): Promise<void>;
  /** After a failure of an exclusive role: the containers stopped first serve again. */
  restart(names: string[]): Promise<void>;
  /** Drains and stops an old container once the new one serves. */
  retire(old: string): Promise<void>;
  /** What serves when the connection dropped in the middle of the swap. */
  lost(name: string, old: string[], switched: boolean): string;
  /** Said once the new container alone takes the scope's traffic, if the mode knows it. */
  alone(name: string): string | undefined;
}

/** The route-file mode: the swap's own probe, one atomic route rewrite. */
class RouteFileTraffic implements Traffic {
  readonly kind = "routes";
  private backend = "";
  constructor(
    private readonly conn: SshConnection,
    private readonly cfg: AppContainerConfig,
    private readonly routing: TraefikRouting,
    private readonly route: ScopeRoute,
    private readonly took: () => string,
  ) {}

  async prepare() {}

  async probe(name: string) {
    const host = this.cfg.hostName;
    await step(host, `waiting for ${name} to answer its health check`, () => waitReady(this.conn, this.cfg, name));
    [this.backend] = await Promise.all([
      step(host, `reading the address of ${name}`, () => backendOf(this.conn, this.cfg, name)),
      step(host, "asking Traefik's API before moving traffic", () => this.routing.confirmApi()),
    ]);
  }

  async switch(name: string, moving: () => void) {
    progress(this.cfg.hostName, `${name} answers its health check (${this.took()}); moving traffic to it`);
    moving();
    await step(this.cfg.hostName, `moving traffic to ${name}`, () => this.routing.routeTo({ ...this.route.spec, servers: [this.backend] }, this.route.certificate));
  }

  async withdraw(name: string, switched: boolean) {
    await this.conn.run(docker.stopContainer(name, switched ? Math.min(this.cfg.stopWaitTime, 10) : 1));
  }

  /** The route names the containers that served before, at their addresses now (a dockerd
   * restart may have given them new ones), or none when none did by route (they are routed
   * by their labels). Rewritten only when it differs, unless the switch had begun. */
  async restore(old: string[], switched: boolean) {
    const byRoute = [];
    for (const o of old) if (!(await this.conn.run(docker.cordSource(o))).stdout.trim()) byRoute.push(await backendOf(this.conn, this.cfg, o));
    const now = await this.routing.fileServers();
    if (!switched && now && [...now].sort().join(" ") === [...byRoute].sort().join(" ")) return;
    progress(this.cfg.hostName, `pointing the route back at ${old.join(", ") || "nothing"}`);
    await this.routing.routeTo({ ...this.route.spec, servers: byRoute }, this.route.certificate);
  }

  async restart(names: string[]) {
    for (const n of names) {
      await this.conn.exec(docker.startContainer(n));
      await waitReady(this.conn, this.cfg, n);
    }
    await this.restore(names, true);
  }

  retire(old: string) {
    return retire(this.conn, this.cfg, old, this.routing);
  }

  lost(name: string, old: string[], switched: boolean) {
    const before = old.length ? old.join(", ") : "no earlier container";
    return switched
      ? `the route was being switched to ${name} alone: Traefik sends traffic to exactly one version, ${name} or ${before}`
      : `${before} stays the only version in rotation; ${name} was started but never routed`;
  }

  alone(name: string) {
    return `Traefik routes to ${name} only`;
  }
}

/** The label mode: Docker's health schedule, Traefik's label routing, Kamal 1's cord (or
 * no Traefik at all: the container is ready when Docker calls it healthy). */
class LabelTraffic implements Traffic {
  readonly kind = "labels";
  readonly cord?: string;
  constructor(
    private readonly conn: SshConnection,
    private readonly cfg: AppContainerConfig,
    private readonly routing: TraefikRouting | undefined,
    home: string,
    name: string,
  ) {
    // Kamal 1's cord: a container routed by its labels leaves rotation when it is cut (none
    // with `healthcheck.cord: false`, as Kamal: it leaves when it stops).
    if (cfg.traefik && cfg.healthcheck?.cord !== false) this.cord = `${runDirectoryAt(home, cfg.runDirectory)}/cords/${name}-${randomBytes(4).toString("hex")}`;
  }

  async prepare() {
    const cord = this.cord;
    if (cord) await step(this.cfg.hostName, "tying the cord", () => this.conn.exec(docker.tieCord(cord)));
  }

  probe(name: string) {
    return step(this.cfg.hostName, `waiting for ${name} to be healthy`, () => waitHealthy(this.conn, this.cfg, name));
  }

  async switch(name: string, moving: () => void) {
    const routing = this.routing;
    if (!routing) return;
    await step(this.cfg.hostName, `waiting for Traefik to route to ${name}`, () => routing.waitLabelRouted(name, true));
    moving();
  }

  async withdraw(name: string, switched: boolean) {
    if (switched) await retire(this.conn, this.cfg, name, this.routing);
    else await this.conn.run(docker.stopContainer(name, 1));
    if (this.cord) await this.conn.run(docker.cutCord(this.cord));
  }

  async restore() {}

  async restart(names: string[]) {
    for (const n of names) {
      await this.conn.exec(docker.startContainer(n));
      await waitHealthy(this.conn, this.cfg, n);
    }
  }

  retire(old: string) {
    return retire(this.conn, this.cfg, old, this.routing);
  }

  lost(name: string, old: string[]) {
    const before = old.length ? old.join(", ") : "no earlier container";
    return this.routing ? `${name} joins ${before} in rotation once Docker calls it healthy (label routing): two versions may serve` : `${name} was started beside ${before}`;
  }

  alone() {
    return undefined;
  }
}

/** The mode this host's Traefik allows for the scope (route files unless it reads labels
 * only, or the role keeps Kamal 1's labels); the route checked before anything changes. */
export function trafficFor(conn: SshConnection, cfg: AppContainerConfig, routing: TraefikRouting | undefined, home: string, name: string, took: () => string): Traffic {
  if (routing) {
    const problems = routeProblems(cfg, routing);
    if (problems.length) throw new Error(problems.join("; "));
  }
  if (routing?.byRoutes && !wantsLabelRouting(cfg)) return new RouteFileTraffic(conn, cfg, routing, checkedRoute(cfg, routing), took);
  if (cfg.traefik && Object.keys(proxyErrorPages(cfg.errorPages)).length) progress(cfg.hostName, `the error pages are not served for ${cfg.role}: it is routed by container labels, and they go in a route file`);
  return new LabelTraffic(conn, cfg, routing, home, name);
}

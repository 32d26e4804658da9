/**
 * One role of a service on one host: the health-gated, zero-downtime container swap.
 *
 * Per host: start the new container beside the old one; wait until Docker reports it
 * healthy (Traefik only routes to healthy containers) and Traefik routes to it; cut the old
 * container's cord so its health check fails and Traefik drops it; stop it with the stop
 * wait time so in-flight requests finish; keep the retained versions, prune the rest.
 *
 * Everything here is scoped to (service, destination, role): containers are found by
 * their exact labels, never by a name prefix, and another scope's containers are never
 * stopped, pruned, removed or routed to.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { appContainer, type AppContainerConfig } from "../config/schemas";
import { parseInputs, parseStored } from "../config/fields";
import {
  appLabels,
  assetDirs,
  cleanUpAssets,
  extractAssets,
  syncAssetVolumes,
  containerName,
  copyKind,
  describeScope,
  failedName,
  pruneList,
  replacedName,
  routeOnlySettings,
  routeRule,
  routeSpec,
  routesOf,
  runAppContainer,
  sameScope,
  scopeOf,
  serviceRole,
  type Scope,
  type ScopeContainer,
  wantsLabelRouting,
} from "../commands/app";
import * as docker from "../commands/docker";
import { fullRule } from "../commands/proxy";
import { shellJoin } from "../commands/shell";
import type { SshConnection } from "../ssh/executor";
import { tail } from "../ssh/redact";
import {
  absolute,
  audit,
  connect,
  containerFacts,
  containsUnknown,
  diffResource,
  lines,
  mustAct,
  plan,
  progress,
  remoteHome,
  rootCause,
  Secrets,
  sleep,
  step,
  StepError,
  changeOnce,
  connectionLost,
  validate,
} from "./common";
import { ensureImage } from "./images";
import { withLock } from "./lock";
import { TraefikRouting } from "./routing";
import { RolloutFailed, RolloutMember } from "./rollout";

type Inputs = Record<string, unknown>;

export interface AppOutputs extends Inputs {
  containerName: string;
  containerId: string;
  imageId: string;
  imageDigest: string;
  runningVersion: string;
  status: string;
  pulled: boolean;
}

/** Where a provider input comes from in the Service's arguments. */
const SERVICE_PATHS: Record<string, string> = {
  service: "service", image: "image", digest: "image", version: "version", registry: "registry", destination: "destination",
  connection: "ssh", retain: "retainContainers", bootDelay: "bootWait",
};

export function pathOf(role: unknown) {
  const at = `roles.${typeof role === "string" ? role : "(role)"}`;
  return (key: string) => SERVICE_PATHS[key] ?? (key === "hostName" ? `${at}.hosts` : key === "routeHosts" ? `${at}.proxy.hosts` : `${at}.${key}`);
}

/** A scope's or route's claim can only be checked against the host; done when it is new or
 * changes (never on a no-op preview), and bounded so an unreachable host does not stall the
 * preview (the deploy then reports the host itself). */
const CLAIM_CHECK_MS = 8000;

/** The inputs a scope's claim on a host depends on: its names and its route. */
const CLAIM_FIELDS = ["hostName", "connection", "service", "role", "destination", "traefik", "routeHosts", "appPort", "labels", "proxy", "maintenance"] as const;
const claimSchema = z.object(Object.fromEntries(CLAIM_FIELDS.map((k) => [k, appContainer.shape[k]])));

export async function check(olds: Inputs, news: Inputs) {
  const { value, failures } = validate(appContainer, news, pathOf(news.role));
  if (failures.length) return { inputs: news, failures };
  if (value) sayPlanned(value, olds, news);
  if (value && Object.keys(olds).length === 0) memberOf(value)?.expect(true);
  const claim = claimSchema.safeParse(Object.fromEntries(CLAIM_FIELDS.map((k) => [k, news[k]])));
  if (!claim.success || CLAIM_FIELDS.some((k) => containsUnknown(news[k]))) return { inputs: news, failures };
  const { changed } = plan(appContainer, olds, news);
  const isNew = Object.keys(olds).length === 0;
  if (!isNew && ![...changed.keys()].some((k) => (CLAIM_FIELDS as readonly string[]).includes(k.split(".")[0]))) return { inputs: news, failures };
  const previous = isNew ? undefined : safeStored(olds);
  const cfg = claim.data as unknown as AppContainerConfig;
  const conflicts = await Promise.race([
    claimConflicts(cfg, previous).catch(() => [] as string[]),
    sleep(CLAIM_CHECK_MS).then(() => [] as string[]),
  ]);
  return {
    inputs: news,
    // A route problem names its own setting ("proxy.ssl: …"); a claim is about the hosts. No
    // property is named: the engine would print its value (a certificate's key) beside it.
    failures: conflicts.map((reason) => {
      const own = /^(proxy\.\w+|maintenance): (.*)$/s.exec(reason);
      const [key, ...rest] = own ? own[1].split(".") : ["routeHosts"];
      return { property: "", reason: `${[pathOf(cfg.role)(key), ...rest].join(".")}: ${own ? own[2] : reason}` };
    }),
  };
}

/** What an update will do that a user must know before it runs, said at preview. */
function sayPlanned(cfg: AppContainerConfig, olds: Inputs, news: Inputs) {
  if (Object.keys(olds).length === 0 || containsUnknown(news.hostName)) return;
  const effect = plan(appContainer, olds, news).effect;
  if (effect !== "swap" && !(effect === "reroute" && olds.status !== "running")) return;
  if (cfg.exclusive) {
    progress(cfg.hostName, `stops the running ${serviceRole(cfg)} container before starting the new one (exclusive: never two at once)${cfg.traefik ? "; its requests fail until the new one is healthy" : ""}`);
  }
  if (cfg.watch > 0) progress(cfg.hostName, `watches the new ${serviceRole(cfg)} container for ${cfg.watch}s after it takes traffic, and goes back to the previous one if it fails`);
}

function safeStored(props: Inputs): AppContainerConfig | undefined {
  try {
    return parseStored(appContainer, props);
  } catch {
    return undefined;
  }
}

interface HostContainer {
  name: string;
  state: string;
  labels: Record<string, string>;
}

/** Another scope on the host that would share our container names, or a route we claim. */
export async function claimConflicts(
  cfg: Pick<AppContainerConfig, (typeof CLAIM_FIELDS)[number]>,
  previous?: AppContainerConfig,
): Promise<string[]> {
  const conn = await connect(cfg.connection);
  const out = (await conn.run(docker.scopedContainerLabels())).stdout;
  const containers: HostContainer[] = lines(out).flatMap((l) => {
    const [name, state, json] = l.split("\t");
    try {
      return [{ name: name.replace(/^\//, ""), state, labels: JSON.parse(json) as Record<string, string> }];
    } catch {
      return [];
    }
  });
  const ours = scopeOf(cfg);
  const prefix = serviceRole(cfg);
  const routing = await TraefikRouting.discover(conn, prefix);
  const fileRules = routing ? await routing.routeRules() : new Map<string, string>();
  // The route we claim: a route file's rule includes its path prefixes, so two services on
  // one host name under different prefixes (Kamal 2's path-based routing) do not collide.
  const routes = new Set(
    !cfg.traefik ? [] : wantsLabelRouting(cfg as AppContainerConfig) ? routesOf(appLabels({ ...cfg, version: "" } as AppContainerConfig)) : [`* ${fullRule(routeRule(cfg.routeHosts), cfg.proxy?.pathPrefixes)}`],
  );
  const problems = new Set<string>();
  // What the host's Traefik cannot do for this route, said at preview.
  if (cfg.traefik && routing) for (const p of routeProblems(cfg as AppContainerConfig, routing)) problems.add(p);
  for (const c of containers) {
    const theirs: Scope = { service: c.labels.service ?? "", role: c.labels.role ?? "", destination: c.labels.destination ?? "" };
    if (!theirs.role || sameScope(theirs, ours) || (previous && sameScope(theirs, scopeOf(previous)))) continue;
    // Another role of the same service and destination is the same deployment (a role
    // renamed in this very update, whose old containers the update retires); two roles of
    // one Service on one route are refused by the component itself.
    const sameDeployment = theirs.service === ours.service && theirs.destination === ours.destination;
    if (serviceRole(theirs) === prefix) {
      problems.add(`${describeScope(ours)} and ${describeScope(theirs)} would both name their containers "${prefix}-<version>" on host ${cfg.hostName}; rename one`);
    }
    if (c.state === "running" && !sameDeployment) {
      const fileRule = c.labels["traefik.enable"] === "false" ? fileRules.get(serviceRole(theirs)) : undefined;
      for (const r of [...routesOf(c.labels), ...(fileRule ? [`* ${fileRule}`] : [])]) {
        if (routes.has(r)) {
          problems.add(`${describeScope(ours)} and ${describeScope(theirs)} (container ${c.name}) both claim the route ${r.split(" ").slice(1).join(" ")} on host ${cfg.hostName}; give one its own proxy host`);
        }
      }
    }
  }
  return [...problems];
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  const d = diffResource(appContainer, olds, news);
  // The rollout learns which of its hosts the engine will update.
  if (!containsUnknown(news.rollout) && !containsUnknown(news.role) && !containsUnknown(news.hostName)) {
    const parsed = appContainer.shape.rollout.safeParse(news.rollout);
    if (parsed.success && parsed.data) new RolloutMember(parsed.data, `${String(news.role)}/${String(news.hostName)}`).expect(d.changes);
  }
  return d;
}

/** This host resource's part in its service's rollout (`onFailure: "revert"`), if any. */
function memberOf(cfg: Pick<AppContainerConfig, "rollout" | "role" | "hostName">): RolloutMember | undefined {
  return cfg.rollout ? new RolloutMember(cfg.rollout, `${cfg.role}/${cfg.hostName}`) : undefined;
}

export async function create(news: Inputs) {
  const cfg = parseInputs(appContainer, news);
  const outs = await deploy(cfg, news, memberOf(cfg));
  return { id: `${cfg.hostName}/${serviceRole(cfg)}`, outs };
}

export async function update(_id: string, olds: Inputs, news: Inputs) {
  const cfg = parseInputs(appContainer, news);
  const member = memberOf(cfg);
  if (!mustAct(appContainer, olds, news)) {
    member?.skip();
    return { outs: { ...news, ...pickRuntime(olds) } };
  }
  // Only the route changed (host names, HTTPS, timeouts, maintenance…): the route file is
  // rewritten for the containers that serve now, unless this host routes by labels.
  if (plan(appContainer, olds, news).effect === "reroute" && olds.status === "running") {
    const rerouted = await reroute(cfg).catch((e) => {
      member?.fail((e as Error).message);
      throw e;
    });
    if (rerouted) {
      member?.skip();
      return { outs: { ...news, ...pickRuntime(olds) } };
    }
  }
  const outs = await deploy(cfg, news, member);
  // A new service, destination or role name: the old scope's containers are retired in
  // the same update, drained like any old container.
  const previous = safeStored(olds);
  if (previous && !sameScope(scopeOf(previous), scopeOf(cfg)) && previous.connection.host === cfg.connection.host) {
    await retireScope(previous);
  }
  return { outs };
}

export async function read(id: string, props: Inputs) {
  const cfg = parseStored(appContainer, props);
  const name = String(props.containerName || containerName(cfg));
  const secrets = new Secrets(appContainer, cfg);
  return secrets.guard(async () => {
    const facts = await containerFacts(await connect(cfg.connection), name);
    if (!facts) return { id, props: { ...props, status: "missing", containerId: "", runningVersion: "" } };
    return { id, props: { ...props, containerId: facts.containerId, imageId: facts.imageId, status: facts.status, runningVersion: facts.version } };
  });
}

export async function remove(_id: string, props: Inputs) {
  await retireScope(parseStored(appContainer, props));
}

const RUNTIME = ["containerName", "containerId", "imageId", "imageDigest", "runningVersion", "status", "pulled"];

function pickRuntime(props: Inputs): Partial<AppOutputs> {
  return Object.fromEntries(RUNTIME.filter((k) => k in props).map((k) => [k, props[k]]));
}

/** The scope's containers on the host, newest first. Containers of an earlier release of
 * this tool carry no destination label: they read as "no destination", as Kamal's do. */
async function scopeContainers(conn: SshConnection, cfg: AppContainerConfig): Promise<ScopeContainer[]> {
  const scope = scopeOf(cfg);
  const out = (await conn.exec(docker.serviceContainers(cfg.service))).stdout;
  return lines(out).flatMap((l) => {
    const [name, state, role, destination = "", version = ""] = l.split("\t");
    if (role !== scope.role || destination !== scope.destination) return [];
    return [{ name, running: state === "running" || state === "restarting", version }];
  });
}

/** The audit log a scope's lines go to, and their role tag. */
function auditScope(cfg: AppContainerConfig) {
  return { service: cfg.service, destination: cfg.destination, role: cfg.role };
}

/** Drains and removes every container of a scope (a deleted role or host, a renamed scope). */
async function retireScope(cfg: AppContainerConfig): Promise<void> {
  const secrets = new Secrets(appContainer, cfg);
  await secrets.guard(async () => {
    const conn = await step(cfg.hostName, "connecting", () => connect(cfg.connection));
    await step(cfg.hostName, `retiring ${describeScope(scopeOf(cfg))}`, () => withLock(conn, lockOf(cfg), () => retireContainers(conn, cfg)));
  });
}

async function retireContainers(conn: SshConnection, cfg: AppContainerConfig): Promise<void> {
  {
    const containers = await scopeContainers(conn, cfg);
    const running = containers.filter((c) => c.running).map((c) => c.name);
    const routing = cfg.traefik ? await TraefikRouting.discover(conn, serviceRole(cfg)) : undefined;
    // The scope's route goes first: Traefik stops sending it requests, in-flight ones finish.
    if (routing?.byRoutes) await routing.routeTo({ rule: routeRule(cfg.routeHosts), servers: [] });
    await Promise.all(running.map((name) => retire(conn, cfg, name, routing)));
    const names = containers.map((c) => c.name);
    if (names.length) {
      progress(cfg.hostName, `removing ${names.join(", ")}`);
      await conn.exec(docker.removeContainers(names, true));
      await audit(conn, cfg.hostName, auditScope(cfg), `Removed app containers (${names.join(", ")})`);
    }
    await pruneImages(conn, cfg);
  }
}

/** What the host's Traefik cannot do for the scope's route (a role routed by its labels
 * cannot have any route-file setting). */
function routeProblems(cfg: AppContainerConfig, routing: TraefikRouting): string[] {
  if (!routing.byRoutes || wantsLabelRouting(cfg)) {
    const why = wantsLabelRouting(cfg) ? "its own traefik.* labels keep it on Kamal 1's label routing" : `the Traefik on ${cfg.hostName} routes by container labels only (Kamal 1's, or one started without route files)`;
    return routeOnlySettings(cfg).map((k) => `${k}: is applied through the scope's route file, but ${why}`);
  }
  return routeSpec(cfg, routing.can).problems;
}

/** The scope's route on this host's Traefik (route files): refused, before anything
 * changes, when that Traefik cannot serve it. */
function routeOf(cfg: AppContainerConfig, routing: TraefikRouting) {
  const problems = routeProblems(cfg, routing);
  if (problems.length) throw new Error(problems.join("; "));
  const { spec, certificate } = routeSpec(cfg, routing.can);
  return { spec, certificate };
}

/** Rewrites the scope's route for the container that serves now (a route-only change).
 * False when this host cannot (labels, or no serving container): the caller swaps. */
async function reroute(cfg: AppContainerConfig): Promise<boolean> {
  const secrets = new Secrets(appContainer, cfg);
  return secrets.guard(async () => {
    const host = cfg.hostName;
    const conn = await step(host, "connecting", () => connect(cfg.connection));
    const routing = await step(host, "inspecting Traefik", () => TraefikRouting.discover(conn, serviceRole(cfg)));
    if (!routing?.byRoutes || wantsLabelRouting(cfg)) return false;
    const name = containerName(cfg);
    if ((await containerStatus(conn, name)) !== "running") return false;
    return withLock(conn, lockOf(cfg), async () => {
      const route = await step(host, "checking the route", async () => routeOf(cfg, routing));
      const backend = await step(host, `reading the address of ${name}`, () => backendOf(conn, cfg, name));
      await step(host, "asking Traefik's API before changing the route", () => routing.confirmApi());
      progress(host, `rewriting the route of ${serviceRole(cfg)}${cfg.maintenance ? " (maintenance: Traefik answers 503 with the page)" : ""}; ${name} keeps running`);
      await step(host, `changing the route of ${name}`, () => routing.routeTo({ ...route.spec, servers: [backend] }, route.certificate));
      progress(host, `Traefik serves the new route of ${serviceRole(cfg)}`);
      return true;
    });
  });
}

/** The backend URL of a container: its address on its first network, the app's port. */
async function backendOf(conn: SshConnection, cfg: AppContainerConfig, name: string): Promise<string> {
  const ip = (await conn.exec(docker.containerIp(name))).stdout.trim().split(" ")[0];
  if (!ip) throw new Error(`container ${name} has no network address`);
  return `http://${ip}:${cfg.appPort}`;
}

/** The swap on one host. Returns the outputs to record; throws, leaving the old container
 * serving, when the new one does not become healthy. */
export async function deploy(cfg: AppContainerConfig, inputs: Inputs, member?: RolloutMember): Promise<AppOutputs> {
  member?.join();
  try {
    return await swap(cfg, inputs, member);
  } catch (e) {
    // The other hosts of the rollout go back (this one already has).
    if (!(rootCause(e) instanceof RolloutFailed)) member?.fail(failureOf(e));
    throw e;
  }
}

async function swap(cfg: AppContainerConfig, inputs: Inputs, member?: RolloutMember): Promise<AppOutputs> {
  const secrets = new Secrets(appContainer, cfg);
  return secrets.guard(async () => {
    const host = cfg.hostName;
    const conn = await step(host, "connecting", () => connect(cfg.connection));
    const image = `${cfg.image}:${cfg.version}`;
    const t0 = Date.now();
    const took = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
    if (cfg.bootDelay > 0 && !member) {
      progress(host, `waiting ${cfg.bootDelay}s before this boot batch`);
      await sleep(cfg.bootDelay * 1000);
    }
    const name = containerName(cfg);
    // Independent look-ups run concurrently over the one connection (each docker CLI call
    // costs tens of milliseconds).
    // Look-ups (and the pull) run while the deploy lock is being taken; the first change waits
    // for the lock. If another deploy held it meanwhile, the scope's containers are read again.
    return withLock(conn, lockOf(cfg), async ([{ pulled }, listed, home, routing], waited) => {
      const containers = waited ? await step(host, "listing the scope's containers", () => scopeContainers(conn, cfg)) : listed;
      const byRoutes = !!routing?.byRoutes && !wantsLabelRouting(cfg);
      // What the route needs from this Traefik is checked before anything changes.
      const route = routing
        ? await step(host, "checking the route", async () => {
            const problems = routeProblems(cfg, routing);
            if (problems.length) throw new Error(problems.join("; "));
            return byRoutes ? routeOf(cfg, routing) : undefined;
          })
        : undefined;
      // A rollout's later phases start once every earlier host has switched and passed.
      if (member && member.phase > 0) {
        progress(host, `waiting for the hosts of earlier boot batches (rollout phase ${member.phase})`);
        await step(host, "waiting for its turn in the rollout", () => member.turn());
        if (cfg.bootDelay > 0) {
          progress(host, `waiting ${cfg.bootDelay}s before this boot batch`);
          await sleep(cfg.bootDelay * 1000);
        }
      }
      let old = containers.filter((c) => c.running && c.name !== name).map((c) => c.name);
      // Same version again (an env change, a repair, a rollback to a retained version): the
      // existing copy steps aside under a new name; if it is serving, it is swapped out like
      // any old container.
      const existing = containers.find((c) => c.name === name);
      const aside = existing ? replacedName(name, randomBytes(4).toString("hex")) : undefined;
      if (existing && aside) {
        await step(host, `renaming ${name} to ${aside}`, () =>
          changeOnce(conn, docker.renameContainer(name, aside), async () => (await exists(conn, aside)) && !(await exists(conn, name))),
        );
        if (existing.running) old = [...old, aside];
      }

      // An exclusive role never runs two containers at once: the old ones stop first (and
      // start again if the new one fails).
      let stoppedFirst: string[] = [];
      if (cfg.exclusive && old.length) {
        progress(host, `stopping ${old.join(", ")} before starting ${name} (exclusive: the role never runs twice at once)`);
        await step(host, `stopping ${old.join(", ")} (exclusive)`, () => Promise.all(old.map((o) => retire(conn, cfg, o, routing))));
        stoppedFirst = old;
        old = [];
      }

      // Kamal 1's cord: only a container routed by its labels needs one to leave rotation.
      const cord = cfg.traefik && !byRoutes ? `${home}/.kamal/cords/${name}-${randomBytes(4).toString("hex")}` : undefined;
      if (cord) await step(host, "tying the cord", () => conn.exec(docker.tieCord(cord)));
      const envFile = cfg.envFile ? absolute(home, cfg.envFile.path) : undefined;
      // Asset bridging: the new container mounts its assets and the previous version's; the
      // previous version's container gets the new ones, before any request can ask for them.
      let assetVolume: string | undefined;
      if (cfg.assetPath) {
        const previous = containers.find((c) => c.running && c.version !== cfg.version)?.version;
        progress(host, `bridging the assets of ${previous ?? "no earlier version"} and ${cfg.version}: either container serves both`);
        await step(host, `extracting the assets of ${image}`, () => conn.exec(extractAssets(cfg, home), { repeatable: true }));
        await step(host, `bridging the assets of ${previous ?? "no earlier version"} and ${cfg.version}`, () => conn.exec(syncAssetVolumes(cfg, home, previous), { repeatable: true }));
        assetVolume = assetDirs(home, cfg, cfg.version).volume;
      }

      progress(host, `starting ${name} (${image})${old.length ? ` beside ${old.join(", ")}` : ""} (${took()})`);
      try {
        await step(host, `starting ${name}`, () =>
          changeOnce(conn, runAppContainer(cfg, { name, cordDir: cord, envFile, routing: byRoutes ? "routes" : "labels", assetVolume }), async () => {
            const state = await containerStatus(conn, name);
            if (state === "created") await conn.exec(docker.startContainer(name));
            return state !== undefined;
          }),
        );
      } catch (e) {
        if (connectionLost(e)) throw lostMidSwap(e as Error, { name, old, byRoutes, switched: false, routed: !!routing });
        throw e;
      }

      let switched = false;
      try {
        if (byRoutes) {
          await step(host, `waiting for ${name} to answer its health check`, () => waitReady(conn, cfg, name));
          const [backend] = await Promise.all([
            step(host, `reading the address of ${name}`, () => backendOf(conn, cfg, name)),
            step(host, "asking Traefik's API before moving traffic", () => routing!.confirmApi()),
          ]);
          progress(host, `${name} answers its health check (${took()}); moving traffic to it`);
          switched = true;
          await step(host, `moving traffic to ${name}`, () => routing!.routeTo({ ...route!.spec, servers: [backend] }, route!.certificate));
        } else {
          await step(host, `waiting for ${name} to be healthy`, () => waitHealthy(conn, cfg, name));
          if (routing) await step(host, `waiting for Traefik to route to ${name}`, () => routing.waitLabelRouted(name, true));
          switched = !!routing;
        }
        // The watch window: the old containers keep running (out of rotation when routed by
        // route file) until the new one has stayed healthy for it.
        if (cfg.watch > 0) await step(host, `watching ${name} (${cfg.watch}s)`, () => watchServing(conn, cfg, name, byRoutes, old));
        // The rollout: this host stays ready to go back until every host has passed.
        if (member) {
          member.passed();
          if (!member.failure) progress(host, `${name} passed; waiting for the rest of the rollout before stopping ${old.join(", ") || "nothing"}`);
          await step(host, "waiting for the rest of the rollout", () => member.settled());
        }
      } catch (e) {
        if (connectionLost(e)) throw lostMidSwap(e as Error, { name, old, byRoutes, switched, routed: !!routing });
        // Traffic goes back to the containers that served before (if it had moved at all):
        // first when it had; beside the cleanup when it had not (the route is only checked).
        const restored = byRoutes ? restoreRoute(conn, cfg, routing!, route!, old, switched).catch(() => undefined) : undefined;
        if (switched) await restored;
        try {
          // One that took traffic leaves rotation and finishes its in-flight requests first.
          // What the report shows is read meanwhile: a failed deploy ends soon after its
          // deadline (the steps that follow run side by side where they can).
          const [, more] = await Promise.all([
            (async () => {
              if (switched && !byRoutes) await retire(conn, cfg, name, routing);
              else await conn.run(docker.stopContainer(name, switched ? Math.min(cfg.stopWaitTime, 10) : 1));
              if (cord) await conn.run(docker.cutCord(cord));
            })(),
            failureDetails(conn, name, secrets, envFile),
            restored,
          ]);
          // The failed container is kept (the newest failed one only) for its logs, under a
          // name that no retention or rollback counts; the copy that stepped aside gets its
          // name back.
          const reverted = rootCause(e) instanceof RolloutFailed;
          if (!reverted) member?.fail(failureOf(e));
          const failed = failedName(name, randomBytes(4).toString("hex"));
          await Promise.all([
            (async () => {
              await conn.run(docker.renameContainer(name, failed));
              if (aside) await conn.run(docker.renameContainer(aside, name));
            })(),
            pruneFailed(conn, cfg, failed),
          ]);
          const back = stoppedFirst.map((o) => (o === aside ? name : o));
          if (back.length) await restartStopped(conn, cfg, back, byRoutes ? { routing: routing!, route: route! } : undefined);
          const serving = back.length
            ? `${back.join(", ")} was started again and serves`
            : old.length
              ? `${old.map((o) => (o === aside ? name : o)).join(", ")} keeps serving${switched ? " (traffic went back to it)" : ""}`
              : "no earlier container was running";
          await audit(conn, host, auditScope(cfg), `${reverted ? "Reverted" : "Failed to start"} app version ${cfg.version} (${reverted ? "onFailure: revert" : ((e as StepError).step ?? "booting")}); ${serving}`);
          if (reverted) {
            throw new StepError(host, "reverting (onFailure: revert)", e as Error, `${rootMessage(e)}, so this host went back: ${name} was stopped and kept as ${failed}, ${serving}`);
          }
          throw new StepError(host, (e as StepError).step ?? "booting", e as Error, `${rootMessage(e)}; it was stopped and kept as ${failed} for its logs, ${serving}.\n${more}`);
        } catch (cleanup) {
          if (cleanup instanceof StepError && cleanup.cause === e) throw cleanup;
          if (connectionLost(cleanup)) throw lostMidSwap(e as Error, { name, old, byRoutes, switched, routed: !!routing });
          throw cleanup;
        }
      }
      if (byRoutes) progress(host, `Traefik routes to ${name} only (${took()})`);

      // What to record, and what to prune, is read while the old containers drain.
      const [facts, digestOut] = await Promise.all([
        step(host, `inspecting ${name}`, () => containerFacts(conn, name)),
        step(host, `reading the digest of ${image}`, () => conn.exec(docker.imageDigest(image))),
        step(host, `retiring ${old.join(", ") || "nothing"}`, () =>
          Promise.all([scopeContainers(conn, cfg), Promise.all(old.map((o) => retire(conn, cfg, o, routing)))]).then(([listed]) =>
            prune(conn, cfg, name, listed.map((c) => (old.includes(c.name) ? { ...c, running: false } : c))),
          ),
        ),
      ]);
      // Only this version serves now: the other versions' asset directories go (Kamal's way).
      if (cfg.assetPath) await step(host, "removing earlier versions' assets", () => conn.exec(cleanUpAssets(cfg, home), { repeatable: true }));
      const { containerId, imageId } = facts ?? { containerId: "", imageId: "" };
      const digest = digestOut.stdout.trim().split(" ");
      progress(host, `${name} is serving${old.length ? `; stopped ${old.join(", ")}` : ""} (${took()})`);
      const was = containers.find((c) => c.running && c.name !== name)?.version ?? (existing?.running ? cfg.version : undefined);
      const rolledBack = existing && !existing.running;
      await audit(conn, host, auditScope(cfg), `${rolledBack ? "Rolled back app to" : "Started app"} version ${cfg.version}${was ? ` (was ${was})` : ""}`);
      return {
        ...inputs,
        containerName: name,
        containerId,
        imageId,
        imageDigest: digest[1] ?? digest[0],
        runningVersion: cfg.version,
        status: "running",
        pulled,
      };
    }, () =>
      Promise.all([
        step(host, `pulling ${image}`, () => ensureImage(conn, image, host, cfg.registry, cfg.digest)),
        step(host, "listing the scope's containers", () => scopeContainers(conn, cfg)),
        step(host, "reading the home directory", () => remoteHome(conn)),
        step(host, "inspecting Traefik", () => (cfg.traefik ? TraefikRouting.discover(conn, serviceRole(cfg)) : Promise.resolve(undefined))),
      ]),
    );
  });
}

/** The deploy lock of the scope's service and destination on its host. */
function lockOf(cfg: AppContainerConfig) {
  return { host: cfg.hostName, service: cfg.service, destination: cfg.destination, version: cfg.version, waitSeconds: cfg.lockWait };
}

/** What failed, for the other hosts of a rollout: the step and its innermost message. */
function failureOf(e: unknown): string {
  return e instanceof StepError ? `${e.step}: ${rootMessage(e)}` : rootMessage(e);
}

/** The innermost message, without the executor's "ssh <address>: " (the step names the host). */
function rootMessage(e: unknown): string {
  const root = rootCause(e);
  return (root instanceof Error ? root.message : String(root)).replace(/^ssh [^:]+: /, "");
}

/** The connection dropped mid-swap and did not come back: say what serves on the host. */
function lostMidSwap(e: Error, at: { name: string; old: string[]; byRoutes: boolean; switched: boolean; routed: boolean }): Error {
  const before = at.old.length ? at.old.join(", ") : "no earlier container";
  const state = !at.routed
    ? `${at.name} was started beside ${before}`
    : at.byRoutes
      ? at.switched
        ? `the route was being switched to ${at.name} alone: Traefik sends traffic to exactly one version, ${at.name} or ${before}`
        : `${before} stays the only version in rotation; ${at.name} was started but never routed`
      : `${at.name} joins ${before} in rotation once Docker calls it healthy (label routing): two versions may serve`;
  const host = e instanceof StepError ? e.host : "";
  const stepName = e instanceof StepError ? e.step : "swapping";
  return new StepError(host, stepName, e, `${rootMessage(e)}. ${state}; the next \`pulumi up\` converges`);
}

/** "running", "exited", "created"… of a container, or undefined when there is none. */
async function containerStatus(conn: SshConnection, name: string): Promise<string | undefined> {
  const r = await conn.run(docker.containerState(name));
  return r.code === 0 ? r.stdout.trim().split(" ")[0] : undefined;
}

async function exists(conn: SshConnection, name: string): Promise<boolean> {
  return (await containerStatus(conn, name)) !== undefined;
}

/** After a failed swap: the route names the containers that served before, at their
 * addresses now (a dockerd restart may have given them new ones), or goes away when none
 * did by route (they are routed by their labels). Rewritten only when it differs, unless
 * the switch had begun. */
async function restoreRoute(conn: SshConnection, cfg: AppContainerConfig, routing: TraefikRouting, route: ReturnType<typeof routeOf>, old: string[], switched: boolean) {
  const byRoute = [];
  for (const o of old) if (!(await conn.run(docker.cordSource(o))).stdout.trim()) byRoute.push(await backendOf(conn, cfg, o));
  const now = await routing.fileServers();
  if (!switched && now && [...now].sort().join(" ") === [...byRoute].sort().join(" ")) return;
  progress(cfg.hostName, `pointing the route back at ${old.join(", ") || "nothing"}`);
  await routing.routeTo({ ...route.spec, servers: byRoute }, route.certificate);
}

/**
 * Ready to take traffic, probed directly and at once rather than on Docker's health
 * schedule: the HTTP health path on the container's address (through the SSH connection),
 * or the health command run in the container. Fails at once if the container exits or
 * restarts, and at the deadline.
 */
async function waitReady(conn: SshConnection, cfg: AppContainerConfig, name: string): Promise<void> {
  const hc = cfg.healthcheck!;
  const deadline = hc.deadline * 1000;
  // Time the host could not be reached does not count against the container.
  const since = conn.stopwatch();
  let ip: string | undefined;
  let lastReport = 0;
  let forwarding = true;
  let last = "";
  for (let attempt = 1; ; attempt++) {
    const r = await conn.run(docker.containerState(name));
    const [status, health, restarts] = r.stdout.trim().split(" ");
    if (r.code !== 0) throw new Error(`container ${name} disappeared while booting`);
    if (status !== "running" || Number(restarts) > 0) {
      throw new Error(`container ${name} ${status === "running" ? "restarted" : status} while booting (health ${health})`);
    }
    if (health === "healthy") return;
    // A probe never outlasts the deadline: a hanging app fails at it, not a timeout later.
    const timeout = Math.max(200, Math.min(hc.timeout * 1000, deadline - since()));
    if (hc.cmd) {
      const probe = await conn.run(docker.execInContainer(name, hc.cmd));
      if (probe.code === 0) return;
      last = `${hc.cmd} exited ${probe.code}`;
    } else if (forwarding) {
      ip ??= (await conn.exec(docker.containerIp(name))).stdout.trim().split(" ")[0];
      try {
        const answer = await conn.httpGet(ip, hc.port, hc.path, timeout);
        if (answer.status >= 200 && answer.status < 300) return;
        last = `GET ${hc.path} answered HTTP ${answer.status}`;
      } catch (e) {
        last = (e as Error).message.split("\n")[0].slice(0, 160);
        // A server that refuses forwarding: Docker's own health schedule decides instead,
        // when the container has one.
        if (/prohibited|open failed/i.test((e as Error).message)) {
          forwarding = false;
          if (health === "-") {
            throw new Error(`the SSH server refuses port forwarding, which probing ${hc.path} on ${name} from outside the container needs: allow it (AllowTcpForwarding) or give the health check a cmd`);
          }
        }
      }
    }
    const elapsed = since();
    if (elapsed > deadline) throw new Error(`container ${name} did not become healthy within ${hc.deadline}s (${health !== "-" || !last ? `health ${health}` : `last probe: ${last}`})`);
    if (elapsed - lastReport >= 3000) {
      lastReport = elapsed;
      progress(cfg.hostName, `waiting for ${name} to be healthy (attempt ${attempt}, ${Math.round(elapsed / 1000)}s of ${hc.deadline}s)`);
    }
    await sleep(100);
  }
}

/**
 * The watch window after the switch: the container must keep running, without a restart,
 * and keep passing its health check (Docker's, or the HTTP path probed as at boot: `retries`
 * failures in a row fail it) for `watch` seconds. Time the host could not be reached does
 * not count.
 */
async function watchServing(conn: SshConnection, cfg: AppContainerConfig, name: string, byRoutes: boolean, old: string[]): Promise<void> {
  const hc = cfg.healthcheck;
  const window = cfg.watch * 1000;
  const since = conn.stopwatch();
  const probeHttp = byRoutes && hc && !hc.cmd;
  const every = Math.min(1000, Math.max(250, (hc?.interval ?? 1) * 1000));
  const at = () => `${(since() / 1000).toFixed(1)}s after it took traffic`;
  progress(cfg.hostName, `watching ${name} for ${cfg.watch}s: it must stay healthy without a restart${old.length ? `; ${old.join(", ")} kept running${byRoutes ? " out of rotation" : ""} meanwhile` : ""}`);
  let ip: string | undefined;
  let failures = 0;
  let lastAnswer = "";
  let lastReport = 0;
  for (;;) {
    const r = await conn.run(docker.containerState(name));
    const [status, health, restarts] = r.stdout.trim().split(" ");
    if (r.code !== 0) throw new Error(`container ${name} disappeared ${at()}`);
    if (status !== "running" || Number(restarts) > 0) {
      throw new Error(`container ${name} ${status === "running" ? "restarted" : status} ${at()}, inside its ${cfg.watch}s watch`);
    }
    if (health === "unhealthy") throw new Error(`container ${name} turned unhealthy ${at()}, inside its ${cfg.watch}s watch`);
    if (probeHttp) {
      ip ??= (await conn.exec(docker.containerIp(name))).stdout.trim().split(" ")[0];
      try {
        const answer = await conn.httpGet(ip, hc.port, hc.path, hc.timeout * 1000);
        const ok = answer.status >= 200 && answer.status < 300;
        failures = ok ? 0 : failures + 1;
        lastAnswer = `HTTP ${answer.status}`;
      } catch (e) {
        failures++;
        lastAnswer = (e as Error).message;
      }
      if (failures >= hc.retries) {
        throw new Error(`container ${name} failed its health check (${hc.path}) ${failures} times in a row ${at()}, inside its ${cfg.watch}s watch (last: ${lastAnswer})`);
      }
    }
    const elapsed = since();
    if (elapsed >= window) {
      progress(cfg.hostName, `${name} stayed healthy for its ${cfg.watch}s watch`);
      return;
    }
    if (elapsed - lastReport >= 5000) {
      lastReport = elapsed;
      progress(cfg.hostName, `watching ${name}: healthy for ${Math.round(elapsed / 1000)}s of ${cfg.watch}s`);
    }
    await sleep(every);
  }
}

/** After a failed deploy of an exclusive role: the containers stopped before it start again,
 * and serve again once ready (the route names them again, at their addresses now). */
async function restartStopped(conn: SshConnection, cfg: AppContainerConfig, names: string[], routed?: { routing: TraefikRouting; route: ReturnType<typeof routeOf> }) {
  progress(cfg.hostName, `starting ${names.join(", ")} again`);
  for (const n of names) {
    await conn.exec(docker.startContainer(n));
    await (routed ? waitReady(conn, cfg, n) : waitHealthy(conn, cfg, n));
  }
  if (routed) await restoreRoute(conn, cfg, routed.routing, routed.route, names, true);
}

/** Polls Docker until the container is healthy (or, without a health check, has stayed
 * up for `readinessDelay` seconds). Fails at once if it exits or restarts. */
async function waitHealthy(conn: SshConnection, cfg: AppContainerConfig, name: string): Promise<void> {
  const deadline = (cfg.healthcheck?.deadline ?? cfg.readinessDelay + 10) * 1000;
  // Time the host could not be reached does not count against the container.
  const since = conn.stopwatch();
  let attempt = 0;
  let lastReport = 0;
  for (;;) {
    attempt++;
    const r = await conn.run(docker.containerState(name));
    const [status, health, restarts] = r.stdout.trim().split(" ");
    const elapsed = since();
    if (r.code !== 0) throw new Error(`container ${name} disappeared while booting`);
    if (status !== "running" || Number(restarts) > 0) {
      throw new Error(`container ${name} ${status === "running" ? "restarted" : status} while booting (health ${health})`);
    }
    if (cfg.healthcheck ? health === "healthy" : elapsed >= cfg.readinessDelay * 1000) return;
    if (elapsed > deadline) {
      throw new Error(`container ${name} did not become healthy within ${cfg.healthcheck?.deadline}s (health ${health})`);
    }
    if (elapsed - lastReport >= 3000) {
      lastReport = elapsed;
      progress(cfg.hostName, `waiting for ${name} to be healthy (attempt ${attempt}, ${Math.round(elapsed / 1000)}s of ${deadline / 1000}s, health ${health})`);
    }
    await sleep(100);
  }
}

/** Takes an old container out of rotation, then stops it with the stop wait time. One
 * routed by route file already is (the switch named only the new container); one routed
 * by its labels leaves when its cut cord turns it unhealthy. */
async function retire(conn: SshConnection, cfg: AppContainerConfig, old: string, routing?: TraefikRouting) {
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

async function waitUnhealthy(conn: SshConnection, cfg: AppContainerConfig, name: string) {
  const hc = cfg.healthcheck ?? { interval: 1, retries: 3 };
  const deadline = Date.now() + (hc.interval * (hc.retries + 2) + 10) * 1000;
  while (Date.now() < deadline) {
    const [status, health] = (await conn.run(docker.containerState(name))).stdout.trim().split(" ");
    if (status !== "running" || health === "unhealthy" || health === "-") return;
    await sleep(150);
  }
  progress(cfg.hostName, `${name} did not turn unhealthy in time; stopping it anyway`);
}

/**
 * Retention by version: besides the serving container, the `retain` most recent earlier
 * versions that served here are kept stopped, with their images (a rollback needs no
 * registry). Replaced copies of a version never count; of failed containers only the
 * newest is kept, for its logs.
 */
async function prune(conn: SshConnection, cfg: AppContainerConfig, serving: string, listed: ScopeContainer[]) {
  const excess = pruneList(listed, serving, cfg.version, cfg.retain);
  if (!excess.length) return;
  progress(cfg.hostName, `pruning ${excess.join(", ")}`);
  await conn.run(docker.removeContainers(excess));
  // Only a removed container can leave an image unused.
  await pruneImages(conn, cfg);
}

/** After a failed deploy: only the newest failed container of the scope is kept. */
async function pruneFailed(conn: SshConnection, cfg: AppContainerConfig, newest: string) {
  const older = (await scopeContainers(conn, cfg)).filter((c) => copyKind(c.name) === "failed" && c.name !== newest && !c.running).map((c) => c.name);
  if (older.length) await conn.run(docker.removeContainers(older));
}

/** Images of the service's repository that no container on the host uses any more. */
async function pruneImages(conn: SshConnection, cfg: AppContainerConfig) {
  const [inUseOut, ofImage] = await Promise.all([conn.run(docker.imagesInUse()), conn.run(docker.imagesOf(cfg.image))]);
  const inUse = new Set(lines(inUseOut.stdout));
  const unused = lines(ofImage.stdout).filter((ref) => !inUse.has(ref) && !ref.endsWith(":<none>"));
  if (unused.length) await conn.run(docker.removeImages(unused));
}

/** Health log and last log lines of a failed container; the env file's values become
 * secrets of the operation, so the report can never show them. */
async function failureDetails(conn: SshConnection, name: string, secrets: Secrets, envFile?: string): Promise<string> {
  const [env, healthOut, logsOut] = await Promise.all([
    envFile ? conn.run(shellJoin(["cat", envFile])) : undefined,
    conn.run(docker.containerHealthLog(name)),
    conn.run(docker.containerLogs(name, 30)),
  ]);
  if (env) secrets.addEnvFile(env.stdout);
  const healthJson = healthOut.stdout.trim();
  let health = "";
  try {
    const parsed = JSON.parse(healthJson) as { Log?: { ExitCode: number; Output: string }[] } | null;
    if (parsed?.Log?.length) {
      health = parsed.Log.slice(-5)
        .map((l) => `exit ${l.ExitCode}: ${l.Output.trim() || "(no output)"}`)
        .join("\n");
    }
  } catch {
    /* not JSON: no health log */
  }
  const logs = tail(logsOut.stdout, 30) || "(no output)";
  // Docker's own health log, when the container has a health check Docker runs.
  return `${health ? `--- health check log (last 5) ---\n${health}\n` : ""}--- last log lines of ${name} ---\n${logs}`;
}


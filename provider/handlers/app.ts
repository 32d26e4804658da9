/**
 * The app container resource: one role of a service on one host. check/diff/create/update/
 * read/delete; a version change is the swap (./swap/states.ts), a route-only change a
 * rewrite of the scope's route, a deleted or renamed scope drained and removed.
 *
 * Everything here is scoped to (service, destination, role): containers are found by
 * their exact labels, never by a name prefix, and another scope's containers are never
 * stopped, pruned, removed or routed to.
 */
import { z } from "zod";
import { appContainer, type AppContainerConfig } from "../config/schemas";
import { parseInputs, parseStored } from "../config/fields";
import { appOutputs, outputNames } from "../config/outputs";
import { appLabels, containerName, describeScope, hostRule, labelRoutes, sameScope, scopeOf, serviceRole, wantsLabelRouting, type Scope } from "../commands/app";
import * as docker from "../commands/docker";
import { fullRule } from "../commands/proxy";
import type { SshConnection } from "../ssh/executor";
import {
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
  validate,
} from "./common";
import { ensureImage } from "./images";
import { withLock } from "./lock";
import { TraefikRouting } from "./routing";
import { RolloutFailed, RolloutMember } from "./rollout";
import { containerStatus } from "./swap/probes";
import { pruneImages, scopeContainers } from "./swap/retention";
import { auditScope, failureOf, HostSwap, type SwapOutputs } from "./swap/states";
import { backendOf, retire, routeProblems, routeRunning } from "./swap/traffic";

import type { CheckResult, Inputs, Notice } from "./handlers";

export type AppOutputs = Inputs & SwapOutputs;

/** Where a provider input comes from in the Service's arguments. */
const SERVICE_PATHS: Record<string, string> = {
  service: "service", image: "image", digest: "image", version: "version", registry: "registry", destination: "destination",
  connection: "ssh", retain: "retainContainers", bootDelay: "bootWait",
};

export function pathOf(role: unknown) {
  const at = `roles.${typeof role === "string" ? role : "(role)"}`;
  return (key: string) => SERVICE_PATHS[key] ?? (key === "hostName" ? `${at}.hosts` : key === "routeHosts" ? `${at}.proxy.hosts` : `${at}.${key}`);
}

/** The inputs a scope's claim on a host depends on: its names and its route. */
const CLAIM_FIELDS = ["hostName", "connection", "service", "role", "destination", "traefik", "routeHosts", "appPort", "labels", "proxy", "maintenance"] as const;
const claimSchema = z.object(Object.fromEntries(CLAIM_FIELDS.map((k) => [k, appContainer.shape[k]])) as Pick<typeof appContainer.shape, (typeof CLAIM_FIELDS)[number]>);

export function check(olds: Inputs, news: Inputs): CheckResult {
  const { value, failures } = validate(appContainer, news, pathOf(news.role));
  if (failures.length || !value) return { inputs: news, failures };
  return { inputs: news, failures, notices: plannedNotices(value, olds, news) };
}

/** A scope's or route's claim can only be checked against the host: done when it is new or
 * its claim changes (never on a no-op preview). */
export async function preflight(olds: Inputs, checked: CheckResult): Promise<CheckResult> {
  const news = checked.inputs;
  const claim = claimSchema.safeParse(Object.fromEntries(CLAIM_FIELDS.map((k) => [k, news[k]])));
  if (!claim.success || CLAIM_FIELDS.some((k) => containsUnknown(news[k]))) return checked;
  const isNew = Object.keys(olds).length === 0;
  const { changed } = plan(appContainer, olds, news);
  if (!isNew && ![...changed.keys()].some((k) => (CLAIM_FIELDS as readonly string[]).includes(k.split(".")[0]))) return checked;
  const cfg = claim.data;
  const conflicts = await claimConflicts(cfg, isNew ? undefined : safeStored(olds));
  // A route problem names its own setting ("proxy.ssl: …"); a claim is about the hosts. No
  // property is named: the engine would print its value (a certificate's key) beside it.
  const failures = conflicts.map((reason) => {
    const own = /^(proxy\.\w+|maintenance): (.*)$/s.exec(reason);
    const [key, ...rest] = own ? own[1].split(".") : ["routeHosts"];
    return { property: "", reason: `${[pathOf(cfg.role)(key), ...rest].join(".")}: ${own ? own[2] : reason}` };
  });
  return { ...checked, failures: [...checked.failures, ...failures] };
}

/** The rollout learns which of its hosts the engine will create or update. */
export function planned(news: Inputs, changing: boolean): void {
  if (containsUnknown(news.rollout) || containsUnknown(news.role) || containsUnknown(news.hostName)) return;
  const parsed = appContainer.shape.rollout.safeParse(news.rollout);
  if (parsed.success && parsed.data) new RolloutMember(parsed.data, { role: String(news.role), host: String(news.hostName) }).expect(changing);
}

/** What an update will do that a user must know before it runs, said at preview. */
function plannedNotices(cfg: AppContainerConfig, olds: Inputs, news: Inputs): Notice[] {
  if (Object.keys(olds).length === 0 || containsUnknown(news.hostName)) return [];
  const effect = plan(appContainer, olds, news).effect;
  if (effect !== "swap" && !(effect === "reroute" && olds.status !== "running")) return [];
  const notices: Notice[] = [];
  if (cfg.exclusive) {
    notices.push({ host: cfg.hostName, text: `stops the running ${serviceRole(cfg)} container before starting the new one (exclusive: never two at once)${cfg.traefik ? "; its requests fail until the new one is healthy" : ""}` });
  }
  if (cfg.watch > 0) notices.push({ host: cfg.hostName, text: `watches the new ${serviceRole(cfg)} container for ${cfg.watch}s after it takes traffic, and goes back to the previous one if it fails` });
  return notices;
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
    !cfg.traefik ? [] : wantsLabelRouting(cfg as AppContainerConfig) ? labelRoutes(appLabels({ ...cfg, version: "" } as AppContainerConfig)) : [`* ${fullRule(hostRule(cfg.routeHosts), cfg.proxy?.pathPrefixes)}`],
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
      for (const r of [...labelRoutes(c.labels), ...(fileRule ? [`* ${fileRule}`] : [])]) {
        if (routes.has(r)) {
          problems.add(`${describeScope(ours)} and ${describeScope(theirs)} (container ${c.name}) both claim the route ${r.split(" ").slice(1).join(" ")} on host ${cfg.hostName}; give one its own proxy host`);
        }
      }
    }
  }
  return [...problems];
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  return diffResource(appContainer, olds, news);
}

/** This host resource's part in its service's rollout (`onFailure: "revert"`), if any. */
function memberOf(cfg: Pick<AppContainerConfig, "rollout" | "role" | "hostName">): RolloutMember | undefined {
  return cfg.rollout ? new RolloutMember(cfg.rollout, { role: cfg.role, host: cfg.hostName }) : undefined;
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
    const conn = await connect(cfg.connection);
    const facts = await containerFacts(conn, name);
    if (!facts) return { id, props: { ...props, status: "missing", containerId: "", runningVersion: "" } };
    const status = facts.status === "running" && !(await routedTo(conn, cfg, name)) ? "unrouted" : facts.status;
    return { id, props: { ...props, containerId: facts.containerId, imageId: facts.imageId, status, runningVersion: facts.version } };
  });
}

/** Whether the scope's route file (when the host's Traefik routes by files) names the
 * container: a deploy killed mid-swap, or a hand edit, can leave it naming another one or
 * none ("unrouted": drift, which the next update repairs by swapping to it again). True
 * when nothing is routed by file here, or in maintenance (the route names no container). */
async function routedTo(conn: SshConnection, cfg: AppContainerConfig, name: string): Promise<boolean> {
  if (!cfg.traefik || wantsLabelRouting(cfg) || cfg.maintenance) return true;
  const routing = await TraefikRouting.discover(conn, serviceRole(cfg));
  if (!routing?.byRoutes) return true;
  const [servers, backend] = await Promise.all([routing.fileServers(), backendOf(conn, cfg, name).catch(() => undefined)]);
  // An unreadable route file (empty: a write cut short) routes nothing.
  return backend === undefined || (servers ?? []).includes(backend);
}

export async function remove(_id: string, props: Inputs) {
  await retireScope(parseStored(appContainer, props));
}

const RUNTIME = outputNames(appOutputs);

function pickRuntime(props: Inputs): Partial<AppOutputs> {
  return Object.fromEntries(RUNTIME.filter((k) => k in props).map((k) => [k, props[k]]));
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
  const containers = await scopeContainers(conn, cfg);
  const running = containers.filter((c) => c.running).map((c) => c.name);
  const routing = cfg.traefik ? await TraefikRouting.discover(conn, serviceRole(cfg)) : undefined;
  // The scope's route goes first: Traefik stops sending it requests, in-flight ones finish.
  if (routing?.byRoutes) await routing.routeTo({ rule: hostRule(cfg.routeHosts), servers: [] });
  await Promise.all(running.map((name) => retire(conn, cfg, name, routing)));
  const names = containers.map((c) => c.name);
  if (names.length) {
    progress(cfg.hostName, `removing ${names.join(", ")}`);
    await conn.exec(docker.removeContainers(names, true));
    await audit(conn, cfg.hostName, auditScope(cfg), `Removed app containers (${names.join(", ")})`);
  }
  await pruneImages(conn, cfg);
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
      progress(host, `rewriting the route of ${serviceRole(cfg)}${cfg.maintenance ? " (maintenance: Traefik answers 503 with the page)" : ""}; ${name} keeps running`);
      await routeRunning(conn, cfg, routing, name);
      progress(host, `Traefik serves the new route of ${serviceRole(cfg)}`);
      return true;
    });
  });
}

/** The swap on one host. Returns the outputs to record; throws, leaving the old container
 * serving, when the new one does not become healthy. */
export async function deploy(cfg: AppContainerConfig, inputs: Inputs, member?: RolloutMember): Promise<AppOutputs> {
  member?.join();
  try {
    return await swapOn(cfg, inputs, member);
  } catch (e) {
    // The other hosts of the rollout go back (this one already has).
    if (!(rootCause(e) instanceof RolloutFailed)) member?.fail(failureOf(e));
    throw e;
  }
}

async function swapOn(cfg: AppContainerConfig, inputs: Inputs, member?: RolloutMember): Promise<AppOutputs> {
  const secrets = new Secrets(appContainer, cfg);
  return secrets.guard(async () => {
    const host = cfg.hostName;
    const conn = await step(host, "connecting", () => connect(cfg.connection));
    const startedAt = Date.now();
    const image = `${cfg.image}:${cfg.version}`;
    if (cfg.bootDelay > 0 && !member) {
      progress(host, `waiting ${cfg.bootDelay}s before this boot batch`);
      await sleep(cfg.bootDelay * 1000);
    }
    // Look-ups (and the pull) run concurrently over the one connection while the deploy lock
    // is being taken; the swap waits for the lock. If another deploy held it meanwhile, the
    // scope's containers are read again.
    return withLock(conn, lockOf(cfg), async ([{ pulled }, listed, home, routing], waited) => {
      const containers = waited ? await step(host, "listing the scope's containers", () => scopeContainers(conn, cfg)) : listed;
      const outs = await new HostSwap(conn, cfg, secrets, { pulled, containers, home, routing }, member, startedAt).run();
      return { ...inputs, ...outs };
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
  return { host: cfg.hostName, service: cfg.service, destination: cfg.destination, version: cfg.version, waitSeconds: cfg.lockWait, runDirectory: cfg.runDirectory };
}

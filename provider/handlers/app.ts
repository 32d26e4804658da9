/**
 * One role of a service on one host: the health-gated, zero-downtime container swap.
 *
 * Per host: start the new container beside the old one; wait until Docker reports it
 * healthy (Traefik only routes to healthy containers) and Traefik routes to it; cut the old
 * container's cord so its health check fails and Traefik drops it; stop it with the stop
 * wait time so in-flight requests finish; prune beyond the retained count.
 */
import { randomBytes } from "node:crypto";
import { appContainer, type AppContainerConfig } from "../config/schemas";
import { containerName, runAppContainer, scopeLabels, serviceRole } from "../commands/app";
import * as docker from "../commands/docker";
import { shellJoin } from "../commands/shell";
import type { SshConnection } from "../ssh/executor";
import { redact, tail } from "../ssh/redact";
import {
  connect,
  connectionSecrets,
  containerFacts,
  diffContainer,
  mustRestart,
  parseInputs,
  progress,
  redacting,
  remoteHome,
  validate,
} from "./common";
import { ensureImage } from "./images";
import { TraefikRouting } from "./routing";

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

/** Fields whose change starts a new container (a swap), and those only recorded. */
const FIELDS = {
  restart: [
    "service", "role", "destination", "image", "version", "cmd", "env", "envFile", "labels",
    "volumes", "options", "logging", "traefik", "appPort", "healthcheckProbe",
  ],
  quiet: ["stopWaitTime", "retain", "bootDelay", "healthcheckDeadline", "registry", "connection", "hostName", "configPath"],
};

const SERVICE_LEVEL = new Set(["service", "image", "version", "registry", "destination"]);

function pathOf(configPath: string) {
  return (key: string) =>
    SERVICE_LEVEL.has(key) ? key : key === "connection" ? "ssh" : key === "hostName" ? `${configPath}.hosts` : `${configPath}.${key}`;
}

/** The health check split into what changes the container and what does not. */
function comparable(inputs: Inputs): Inputs {
  const hc = inputs.healthcheck;
  // Not known yet (preview): both parts are unknown.
  if (typeof hc !== "object" || hc === null) return { ...inputs, healthcheckProbe: hc, healthcheckDeadline: hc };
  const { deadline, ...probe } = hc as Record<string, unknown>;
  return { ...inputs, healthcheckProbe: probe, healthcheckDeadline: deadline };
}

export function check(_olds: Inputs, news: Inputs) {
  const { failures } = validate(appContainer, news, pathOf(String(news.configPath ?? "")));
  return { inputs: news, failures };
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  return diffContainer(comparable(olds), comparable(news), FIELDS);
}

export async function create(news: Inputs) {
  const cfg = parseInputs(appContainer, news);
  const outs = await deploy(cfg, news);
  return { id: `${cfg.hostName}/${serviceRole(cfg)}`, outs };
}

export async function update(_id: string, olds: Inputs, news: Inputs) {
  const cfg = parseInputs(appContainer, news);
  if (!mustRestart(comparable(olds), comparable(news), FIELDS)) return { outs: { ...news, ...pickRuntime(olds) } };
  return { outs: await deploy(cfg, news) };
}

export async function read(id: string, props: Inputs) {
  const cfg = parseInputs(appContainer, props, RUNTIME);
  const name = String(props.containerName ?? containerName(cfg));
  return redacting(connectionSecrets(cfg.connection), async () => {
    const facts = await containerFacts(await connect(cfg.connection), name);
    if (!facts) return { id, props: { ...props, status: "missing", containerId: "", runningVersion: "" } };
    return { id, props: { ...props, containerId: facts.containerId, imageId: facts.imageId, status: facts.status, runningVersion: facts.version } };
  });
}

export async function remove(_id: string, props: Inputs) {
  const cfg = parseInputs(appContainer, props, RUNTIME);
  await redacting(connectionSecrets(cfg.connection), async () => {
    const conn = await connect(cfg.connection);
    const names = lines((await conn.exec(docker.containersWithLabels(scopeLabels(cfg), { all: true }))).stdout);
    for (const name of names) {
      const cord = (await conn.run(docker.cordSource(name))).stdout.trim();
      if (cord) await conn.exec(docker.cutCord(cord));
    }
    if (names.length) {
      progress(cfg.hostName, `removing ${names.join(", ")}`);
      await conn.exec(docker.removeContainers(names, true));
    }
    await pruneImages(conn, cfg);
  });
}

const RUNTIME = ["containerName", "containerId", "imageId", "imageDigest", "runningVersion", "status", "pulled"];

function pickRuntime(props: Inputs): Partial<AppOutputs> {
  return Object.fromEntries(RUNTIME.filter((k) => k in props).map((k) => [k, props[k]]));
}

function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

/** The swap on one host. Returns the outputs to record; throws, leaving the old container
 * serving, when the new one does not become healthy. */
export async function deploy(cfg: AppContainerConfig, inputs: Inputs): Promise<AppOutputs> {
  const secrets = [...connectionSecrets(cfg.connection), ...(cfg.registry ? [cfg.registry.password] : [])];
  return redacting(secrets, async () => {
    const conn = await connect(cfg.connection);
    const host = cfg.hostName;
    const image = `${cfg.image}:${cfg.version}`;
    if (cfg.bootDelay > 0) {
      progress(host, `waiting ${cfg.bootDelay}s before this boot batch`);
      await sleep(cfg.bootDelay * 1000);
    }
    const name = containerName(cfg);
    const cordDir = cfg.traefik ? `/.kamal/cords/${name}-${randomBytes(4).toString("hex")}` : undefined;
    // Independent look-ups run concurrently over the one connection (each docker CLI call
    // costs tens of milliseconds).
    const [{ pulled }, runningOut, existing, home, routing] = await Promise.all([
      ensureImage(conn, image, host, cfg.registry),
      conn.exec(docker.containersWithLabels(scopeLabels(cfg), { status: "running" })),
      conn.run(docker.containerState(name)),
      remoteHome(conn),
      cfg.traefik ? TraefikRouting.discover(conn, serviceRole(cfg)) : undefined,
    ]);
    const running = lines(runningOut.stdout);
    let old = running.filter((n) => n !== name);
    // Same version again (an env change, a repair): the running copy steps aside under a
    // new name and is swapped out like any old container.
    if (existing.code === 0) {
      const aside = `${name}_replaced_${randomBytes(4).toString("hex")}`;
      await conn.exec(docker.renameContainer(name, aside));
      if (running.includes(name)) old = [...old, aside];
    }

    const cord = cordDir ? `${home}${cordDir}` : undefined;
    if (cord) await conn.exec(docker.tieCord(cord));
    const envFile = cfg.envFile ? absolute(home, cfg.envFile.path) : undefined;

    progress(host, `starting ${name} (${image})${old.length ? ` beside ${old.join(", ")}` : ""}`);
    await conn.exec(runAppContainer(cfg, { name, cordDir: cord, envFile }));

    try {
      await waitHealthy(conn, cfg, name);
      if (routing) await routing.waitRouted(conn, name, true, host);
    } catch (e) {
      await conn.run(docker.stopContainer(name, 1));
      if (cord) await conn.run(docker.cutCord(cord));
      const more = await failureDetails(conn, name, envFile);
      const serving = old.length ? `${old.join(", ")} keeps serving` : "no earlier container was running";
      throw new Error(
        redact(`${host}: ${(e as Error).message}; ${name} was stopped and kept for its logs, ${serving}.\n${more}`, secrets),
      );
    }

    await Promise.all(old.map((o) => retire(conn, cfg, o, routing)));
    const [, facts, digestOut] = await Promise.all([prune(conn, cfg), containerFacts(conn, name), conn.exec(docker.imageDigest(image))]);
    const { containerId, imageId } = facts ?? { containerId: "", imageId: "" };
    const digest = digestOut.stdout.trim().split(" ");
    progress(host, `${name} is serving${old.length ? `; stopped ${old.join(", ")}` : ""}`);
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
  });
}

function absolute(home: string, path: string): string {
  return path.startsWith("/") ? path : `${home}/${path}`;
}

/** Polls Docker until the container is healthy (or, without a health check, has stayed
 * up for two seconds). Fails at once if it exits or restarts. */
async function waitHealthy(conn: SshConnection, cfg: AppContainerConfig, name: string): Promise<void> {
  const deadline = (cfg.healthcheck?.deadline ?? 10) * 1000;
  const started = Date.now();
  let attempt = 0;
  let lastReport = 0;
  for (;;) {
    attempt++;
    const r = await conn.run(docker.containerState(name));
    const [status, health, restarts] = r.stdout.trim().split(" ");
    const elapsed = Date.now() - started;
    if (r.code !== 0) throw new Error(`container ${name} disappeared while booting`);
    if (status !== "running" || Number(restarts) > 0) {
      throw new Error(`container ${name} ${status === "running" ? "restarted" : status} while booting (health ${health})`);
    }
    if (cfg.healthcheck ? health === "healthy" : elapsed >= 2000) return;
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

/** Takes an old container out of rotation, then stops it with the stop wait time. */
async function retire(conn: SshConnection, cfg: AppContainerConfig, old: string, routing?: TraefikRouting) {
  if (cfg.traefik) {
    const cord = (await conn.run(docker.cordSource(old))).stdout.trim();
    if (cord) {
      progress(cfg.hostName, `cutting the cord of ${old}: its health check fails and Traefik drops it`);
      await conn.exec(docker.cutCord(cord));
      await waitUnhealthy(conn, cfg, old);
    }
    if (routing) await routing.waitRouted(conn, old, false, cfg.hostName);
  }
  progress(cfg.hostName, `stopping ${old} (up to ${cfg.stopWaitTime}s for in-flight requests)`);
  await conn.exec(docker.stopContainer(old, cfg.stopWaitTime));
}

async function waitUnhealthy(conn: SshConnection, cfg: AppContainerConfig, name: string) {
  const hc = cfg.healthcheck!;
  const deadline = Date.now() + (hc.interval * (hc.retries + 2) + 10) * 1000;
  while (Date.now() < deadline) {
    const [status, health] = (await conn.run(docker.containerState(name))).stdout.trim().split(" ");
    if (status !== "running" || health === "unhealthy") return;
    await sleep(150);
  }
  progress(cfg.hostName, `${name} did not turn unhealthy in time; stopping it anyway`);
}

/** Removes stopped containers of the role beyond the retained count, and images that no
 * container uses any more. */
async function prune(conn: SshConnection, cfg: AppContainerConfig) {
  const scope = scopeLabels(cfg);
  const stopped = lines((await conn.exec(docker.containersWithLabels(scope, { all: true, status: ["exited", "created"] }))).stdout);
  const excess = stopped.slice(cfg.retain);
  if (excess.length) {
    progress(cfg.hostName, `pruning ${excess.join(", ")}`);
    await conn.run(docker.removeContainers(excess));
  }
  await pruneImages(conn, cfg);
}

async function pruneImages(conn: SshConnection, cfg: AppContainerConfig) {
  const [inUseOut, ofImage] = await Promise.all([conn.run(docker.imagesInUse()), conn.run(docker.imagesOf(cfg.image))]);
  const inUse = new Set(lines(inUseOut.stdout));
  const unused = lines(ofImage.stdout).filter(
    (ref) => !inUse.has(ref) && !ref.endsWith(":<none>"),
  );
  if (unused.length) await conn.run(docker.removeImages(unused));
}

/** Health log and last log lines of a failed container, with env-file values redacted. */
async function failureDetails(conn: SshConnection, name: string, envFile?: string): Promise<string> {
  const secrets: string[] = [];
  if (envFile) {
    const content = (await conn.run(shellJoin(["cat", envFile]))).stdout;
    for (const line of lines(content)) {
      const eq = line.indexOf("=");
      if (eq > 0 && line.length > eq + 1) secrets.push(line.slice(eq + 1));
    }
  }
  const healthJson = (await conn.run(docker.containerHealthLog(name))).stdout.trim();
  let health = "(no health check)";
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
  const logs = tail((await conn.run(docker.containerLogs(name, 30))).stdout, 30) || "(no output)";
  return redact(`--- health check log (last 5) ---\n${health}\n--- last log lines of ${name} ---\n${logs}`, secrets);
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

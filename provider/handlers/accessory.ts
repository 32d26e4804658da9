/**
 * An accessory (database, cache) on one host: a long-lived container whose data lives in
 * host directories. A change reboots it (prepare the new container, stop the old, start the
 * new; the old comes back if the new does not stay up) with the data kept; a new name
 * boots the new container and retires the old one, its data directory kept; deleting it
 * keeps the data unless deleteDataOnDestroy is set.
 */
import { accessoryOutputs, outputNames } from "../config/outputs";
import { accessoryContainer, type AccessoryContainerConfig } from "../config/schemas";
import { accessoryMounts, accessoryName, runAccessory, setPermissions } from "../commands/accessory";
import * as docker from "../commands/docker";
import type { SshConnection } from "../ssh/executor";
import { randomBytes } from "node:crypto";
import { audit, absolute, connect, lastLogs, containerFacts, diffResource, mustAct, plan, progress, readContainer, remoteHome, Secrets, sleep, step, validate } from "./common";
import { containsUnknown, parseInputs, parseStored } from "../config/fields";
import { ensureImage } from "./images";
import { withLock } from "./lock";
import { routeAccessory, unrouteAccessory } from "./accessoryRoute";

import type { CheckResult, Inputs, Notice } from "./handlers";

const RUNTIME = outputNames(accessoryOutputs);

const pathOf = (accessory: unknown) => (key: string) => {
  const at = `accessories.${typeof accessory === "string" ? accessory : "(name)"}`;
  return key === "connection" ? "ssh" : key === "hostName" ? `${at}.hosts` : `${at}.${key}`;
};

export function check(olds: Inputs, news: Inputs): CheckResult {
  const { hold, ...inputs } = news;
  const { failures } = validate(accessoryContainer, news, pathOf(news.name));
  if (failures.length || hold !== true || Object.keys(olds).length === 0) return { inputs, failures };
  return { ...held(olds, inputs), failures };
}

/**
 * The inputs of an accessory left as it runs (`hold`, Kamal's deploy): every change that
 * would touch the container keeps its recorded value, so the update leaves it alone and the
 * next one still sees the change; said on every preview and update until it is applied.
 */
function held(olds: Inputs, news: Inputs): { inputs: Inputs; notices: Notice[] } {
  if (containsUnknown(news.name) || containsUnknown(news.hostName)) return { inputs: news, notices: [] };
  const { changed } = plan(accessoryContainer, olds, news);
  const pending = [...new Set([...changed].filter(([, effect]) => effect !== "record").map(([k]) => k.split(".")[0]))];
  if (!pending.length) return { inputs: news, notices: [] };
  const kept = { ...news };
  for (const k of pending) {
    if (k in olds) kept[k] = olds[k];
    else delete kept[k];
  }
  const name = String(news.name);
  const text = `accessory ${name} has changes not applied (${pending.join(", ")}): a deploy leaves accessories as they run, as Kamal's does; \`pulumi-kamal accessory reboot ${name}\` applies them`;
  return { inputs: kept, notices: [{ host: String(news.hostName), text }] };
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  return diffResource(accessoryContainer, olds, news);
}

export async function create(news: Inputs) {
  const cfg = parseInputs(accessoryContainer, news);
  return { id: `${cfg.hostName}/${accessoryName(cfg)}`, outs: { ...news, ...(await boot(cfg)) } };
}

export async function update(_id: string, olds: Inputs, news: Inputs) {
  const cfg = parseInputs(accessoryContainer, news);
  const kept = { ...news, ...Object.fromEntries(RUNTIME.map((k) => [k, olds[k]])) };
  if (!mustAct(accessoryContainer, olds, news)) return { outs: kept };
  const previous = parseStored(accessoryContainer, olds);
  // Only its route changed: the route is rewritten, the container keeps running.
  if (plan(accessoryContainer, olds, news).effect === "reroute") {
    await new Secrets(accessoryContainer, cfg).guard(async () => {
      const conn = await step(cfg.hostName, "connecting", () => connect(cfg.connection));
      await withLock(conn, lockOf(cfg), () => (cfg.proxy ? routeAccessory(conn, cfg, accessoryName(cfg)) : unrouteAccessory(conn, previous, accessoryName(previous))));
    });
    return { outs: kept };
  }
  const outs = { ...news, ...(await boot(cfg)) };
  if (previous.proxy && !cfg.proxy) await unrouteAccessory(await connect(cfg.connection), previous, accessoryName(previous));
  if (accessoryName(previous) !== accessoryName(cfg) && previous.connection.host === cfg.connection.host) {
    await removeContainer(previous, false);
  }
  return { outs };
}

export async function read(id: string, props: Inputs) {
  const cfg = parseStored(accessoryContainer, props);
  return readContainer(id, props, new Secrets(accessoryContainer, cfg), cfg.connection, accessoryName(cfg));
}

export async function remove(_id: string, props: Inputs) {
  const cfg = parseStored(accessoryContainer, props);
  await removeContainer(cfg, cfg.deleteDataOnDestroy);
}

/** Stops and removes the accessory's container; its data directory is deleted only when
 * asked to. */
async function removeContainer(cfg: AccessoryContainerConfig, deleteData: boolean) {
  const secrets = new Secrets(accessoryContainer, cfg);
  await secrets.guard(() => step(cfg.hostName, `removing ${accessoryName(cfg)}`, async () => {
    const conn = await connect(cfg.connection);
    const name = accessoryName(cfg);
    await withLock(conn, lockOf(cfg), async () => {
      if (cfg.proxy) await unrouteAccessory(conn, cfg, name);
      await conn.run(docker.stopContainer(name, cfg.stopWaitTime));
      await conn.run(docker.removeContainers([name], true));
      const dataDir = `${await remoteHome(conn)}/${name}`;
      if (deleteData) {
        progress(cfg.hostName, `removed ${name} and deleted its data in ${dataDir} (deleteDataOnDestroy)`);
        await conn.exec(docker.removePaths([dataDir]));
      } else {
        progress(cfg.hostName, `removed ${name}; its data is kept in ${dataDir}`);
      }
    });
  }));
}

/** Kamal's accessory commands hold the app's deploy lock; so does every change here. */
function lockOf(cfg: AccessoryContainerConfig) {
  return { host: cfg.hostName, service: cfg.service, destination: cfg.destination, version: cfg.image, waitSeconds: cfg.lockWait, runDirectory: cfg.runDirectory };
}

async function boot(cfg: AccessoryContainerConfig) {
  const secrets = new Secrets(accessoryContainer, cfg);
  return secrets.guard(async () => {
    const conn = await step(cfg.hostName, "connecting", () => connect(cfg.connection));
    // The pull runs while the lock is taken: it changes nothing that runs.
    const pull = () => step(cfg.hostName, `pulling ${cfg.image}`, () => ensureImage(conn, cfg.image, cfg.hostName, cfg.registry));
    return withLock(conn, lockOf(cfg), () => bootLocked(conn, cfg, secrets), pull);
  });
}

async function bootLocked(conn: SshConnection, cfg: AccessoryContainerConfig, secrets: Secrets) {
  const name = accessoryName(cfg);
  const home = await remoteHome(conn);
  const dataDir = `${home}/${name}`;
  const mounts = accessoryMounts(cfg, dataDir);
  await step(cfg.hostName, `writing the files and directories of ${name}`, async () => {
    const dirs = [...mounts.directories.map((d) => d.host), ...mounts.files.map((f) => f.host.slice(0, f.host.lastIndexOf("/")))];
    if (dirs.length) await conn.exec(docker.makeDirectories([...new Set(dirs)]));
    for (const d of mounts.directories) for (const c of setPermissions(d.host, d)) await conn.exec(c);
    for (const f of mounts.files) {
      await conn.upload(f.host, f.content, parseInt(f.mode, 8));
      for (const c of setPermissions(f.host, { owner: f.owner })) await conn.exec(c);
    }
  });

  const envFile = cfg.envFile ? absolute(home, cfg.envFile.path) : undefined;
  if ((await conn.run(docker.containerState(name))).code === 0) {
    await step(cfg.hostName, `rebooting ${name}`, () => reboot(conn, cfg, name, { dataDir, envFile }, secrets));
  } else {
    progress(cfg.hostName, `booting ${name}`);
    await step(cfg.hostName, `booting ${name}`, async () => {
      await conn.exec(runAccessory(cfg, { dataDir, envFile }));
      await waitUp(conn, cfg, name, secrets, envFile);
    });
  }
  // Behind the proxy: routed to the container as it runs now (a reboot gives it a new address).
  await routeAccessory(conn, cfg, name);
  const facts = await containerFacts(conn, name);
  await audit(conn, cfg.hostName, { service: cfg.service, runDirectory: cfg.runDirectory }, `Booted ${name} accessory (${cfg.image})`);
  return { containerId: facts?.containerId ?? "", status: facts?.status ?? "missing", dataDir };
}

/**
 * A reboot prepares first: the image is pulled and the new container created while the old
 * one still runs; only then does the old one stop (with its stop wait) and step aside, and
 * the new one start on the same data. If it does not stay up, the old container runs again.
 */
async function reboot(conn: SshConnection, cfg: AccessoryContainerConfig, name: string, at: { dataDir: string; envFile?: string }, secrets: Secrets) {
  const hex = randomBytes(4).toString("hex");
  const next = `${name}_next_${hex}`;
  const aside = `${name}_replaced_${hex}`;
  await conn.exec(runAccessory(cfg, { ...at, as: next, createOnly: true }));
  progress(cfg.hostName, `rebooting ${name}: prepared ${next}; stopping the old container (data in ${at.dataDir} is kept)`);
  await conn.exec(docker.stopContainer(name, cfg.stopWaitTime));
  await conn.exec(docker.renameContainer(name, aside));
  await conn.exec(docker.renameContainer(next, name));
  try {
    await conn.exec(docker.startContainer(name));
    await waitUp(conn, cfg, name, secrets, at.envFile);
  } catch (e) {
    // The old container comes back, on the same data.
    await conn.run(docker.stopContainer(name, 1));
    const failed = `${name}_failed_${hex}`;
    await conn.run(docker.renameContainer(name, failed));
    await conn.exec(docker.renameContainer(aside, name));
    await conn.exec(docker.startContainer(name));
    throw new Error(`${(e as Error).message}\nthe new container was kept as ${failed}; the previous ${name} runs again with its data`);
  }
  await conn.run(docker.removeContainers([aside], true));
}

/** Running for two seconds (healthy, if the image defines a health check). */
async function waitUp(conn: SshConnection, cfg: AccessoryContainerConfig, name: string, secrets: Secrets, envFile?: string) {
  const started = Date.now();
  for (;;) {
    const [status, health, restarts] = (await conn.run(docker.containerState(name))).stdout.trim().split(" ");
    if (status !== "running" || Number(restarts) > 0) {
      const logs = await lastLogs(conn, name, secrets, envFile);
      // Docker's restart policy may already have started it again: say so, not "running".
      const what = Number(restarts) > 0 ? `restarted ${restarts} time(s)` : `is ${status}`;
      throw new Error(`accessory ${name} ${what} after booting\n--- last log lines ---\n${logs}`);
    }
    const elapsed = Date.now() - started;
    if (elapsed >= 2000 && (health === "-" || health === "healthy")) return;
    if (elapsed > 120_000) throw new Error(`accessory ${name} not healthy after 120s (health ${health})`);
    await sleep(500);
  }
}

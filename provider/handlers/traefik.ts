/**
 * Traefik on one host. A change restarts it: the new container is created (image pulled)
 * first, then the old one stops (Traefik finishes in-flight requests within its
 * graceTimeOut) and the new one starts at once. New connections are refused only between
 * the two, typically well under two seconds. If the new one does not stay up (it exits or
 * its restart policy restarts it), the old one runs again. The deploy lock named by
 * lockService is held on the host throughout.
 */
import { traefikOutputs, outputNames } from "../config/outputs";
import { Command } from "../commands/command";
import { randomBytes } from "node:crypto";
import { traefikContainer, type TraefikContainerConfig } from "../config/schemas";
import { parseInputs, parseStored } from "../config/fields";
import { ACME_IN_TRAEFIK, copyProxyFiles, createTraefik, ensureAcmeStore, replaceTraefik, traefikDirs, trialTraefik, type TraefikDirs } from "../commands/traefik";
import { ROUTES_IN_TRAEFIK } from "../commands/proxy";
import { traefikPluginFiles } from "../commands/traefikPlugin";
import * as docker from "../commands/docker";
import type { SshConnection } from "../ssh/executor";
import { absolute, connect, containsUnknown, lastLogs, containerFacts, diffResource, mustAct, plan, progress, readContainer, remoteHome, Secrets, step, validate } from "./common";
import { ensureImage } from "./images";
import { withLock } from "./lock";
import { describeIncumbent, findIncumbent, handOver, iptablesAccess, type Handed } from "./traefikHandover";
import { adoptKamalProxyRoutes, readKamalProxy, storeAcmeCertificates, type KamalProxyTakeover } from "./kamalProxyTakeover";
import { TRAEFIK_CONTAINER } from "./routing";

import type { CheckResult, Inputs } from "./handlers";

const RUNTIME = outputNames(traefikOutputs);

const pathOf = (key: string) => (key === "connection" ? "ssh" : key === "hostName" ? "hosts" : key);

export function check(olds: Inputs, news: Inputs): CheckResult {
  const { takeover: _set, ...given } = news;
  const failures = validate(traefikContainer, given, pathOf).failures;
  // The takeover is planned once, when the resource is new (preflight), and kept after.
  const known = olds && Object.keys(olds).length > 0;
  const kept = { ...(known && olds.takeover !== undefined ? { takeover: olds.takeover } : {}), ...(known && given.rebooted === undefined && olds.rebooted !== undefined ? { rebooted: olds.rebooted } : {}) };
  return { inputs: { ...given, ...kept }, failures };
}

/** A new Traefik: what serves on the host now, and whether it can be taken over (refused now,
 * naming the host and why, when the up would refuse it). A restart: whether the port can be
 * handed over without a gap. */
export async function preflight(olds: Inputs, checked: CheckResult): Promise<CheckResult> {
  const news = checked.inputs;
  if (containsUnknown(news)) return checked;
  const cfg = parseInputs(traefikContainer, news);
  const conn = await connect(cfg.connection);
  if (olds && Object.keys(olds).length > 0) {
    if (plan(traefikContainer, olds, news).effect !== "restart" || (await iptablesAccess(conn)) !== undefined) return checked;
    return { ...checked, notices: [{ host: cfg.hostName, text: `this change restarts Traefik WITH A GAP: ${cfg.connection.user} cannot change iptables (not root, no passwordless sudo), so new connections are refused while the port changes hands (about a second)` }] };
  }
  const incumbent = await findIncumbent(conn);
  if (!incumbent?.running || incumbent.ours) return checked;
  const takeover = describeIncumbent(incumbent);
  const read = incumbent.kind === "kamal-proxy" ? await readKamalProxy(conn, cfg).catch(() => undefined) : undefined;
  return {
    inputs: { ...news, takeover },
    failures: read?.refusal ? [{ property: "", reason: `${cfg.hostName}: taking over kamal-proxy: ${read.refusal}` }] : [],
    notices: [{ host: cfg.hostName, text: `takes over ${takeover}` }, ...(read?.notes ?? []).map((text) => ({ host: cfg.hostName, text }))],
  };
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  return diffResource(traefikContainer, olds, news);
}

export async function create(news: Inputs) {
  const cfg = parseInputs(traefikContainer, news);
  return { id: `${cfg.hostName}/traefik`, outs: { ...news, ...(await boot(cfg)) } };
}

export async function update(_id: string, olds: Inputs, news: Inputs) {
  if (!mustAct(traefikContainer, olds, news)) return { outs: { ...news, ...Object.fromEntries(RUNTIME.map((k) => [k, olds[k]])) } };
  return { outs: { ...news, ...(await boot(parseInputs(traefikContainer, news))) } };
}

export async function read(id: string, props: Inputs) {
  const cfg = parseStored(traefikContainer, props);
  return readContainer(id, props, new Secrets(traefikContainer, cfg), cfg.connection, TRAEFIK_CONTAINER);
}

export async function remove(_id: string, props: Inputs) {
  const cfg = parseStored(traefikContainer, props);
  await new Secrets(traefikContainer, cfg).guard(() =>
    step(cfg.hostName, "removing Traefik", async () => {
      const conn = await connect(cfg.connection);
      await withLock(conn, lockOf(cfg), async () => {
        progress(cfg.hostName, "removing Traefik");
        await conn.run(docker.stopContainer(TRAEFIK_CONTAINER, 10));
        await conn.run(docker.removeContainers([TRAEFIK_CONTAINER], true));
      });
    }),
  );
}

async function boot(cfg: TraefikContainerConfig) {
  const secrets = new Secrets(traefikContainer, cfg);
  return secrets.guard(async () => {
    const host = cfg.hostName;
    const conn = await step(host, "connecting", () => connect(cfg.connection));
    // The pull runs while the lock is taken: it changes nothing that runs.
    const pull = () => step(host, `pulling ${cfg.image}`, () => ensureImage(conn, cfg.image, host, cfg.registry));
    return withLock(conn, lockOf(cfg), () => bootLocked(conn, cfg, secrets), pull);
  });
}

function lockOf(cfg: TraefikContainerConfig) {
  return { host: cfg.hostName, service: cfg.lockService, destination: cfg.destination, version: cfg.image, waitSeconds: cfg.lockWait, runDirectory: cfg.runDirectory };
}

async function bootLocked(conn: SshConnection, cfg: TraefikContainerConfig, secrets: Secrets) {
  const host = cfg.hostName;
  const home = await remoteHome(conn);
  const envFile = cfg.envFile ? absolute(home, cfg.envFile.path) : undefined;
  const hex = randomBytes(3).toString("hex");
  const next = `${TRAEFIK_CONTAINER}_next_${hex}`;
  const dirs = traefikDirs(home, cfg.runDirectory);
  await step(host, "carrying the proxy's files to the run directory", () => carryProxyFiles(conn, host, dirs));
  await step(host, "preparing the new Traefik container", async () => {
    await conn.exec(docker.makeDirectories([dirs.routes], "755"));
    await writePlugin(conn, dirs.plugins);
    if (cfg.tls?.acme) {
      // Kept across restarts and upgrades: a certificate is never issued twice needlessly.
      await conn.exec(ensureAcmeStore(dirs.acme));
      if (cfg.tls.acme.caCertificates) await conn.upload(`${dirs.acme}/ca.pem`, cfg.tls.acme.caCertificates, 0o644);
    }
    await conn.exec(createTraefik(cfg, { name: next, envFile, dirs }));
  });
  const incumbent = await findIncumbent(conn);
  let retired: Handed["retired"] | undefined;
  if (incumbent?.running) {
    let kamalProxy: KamalProxyTakeover | undefined;
    if (incumbent.kind === "kamal-proxy") {
      const read = await step(host, "reading kamal-proxy's services and certificates", () => readKamalProxy(conn, cfg));
      if (read.refusal) throw new Error(`${read.refusal}; kamal-proxy was left serving`);
      for (const note of read.notes) progress(host, note);
      // Before any Traefik starts: each reads its ACME store once, when it starts.
      await step(host, "moving kamal-proxy's certificates into Traefik's ACME store", () => storeAcmeCertificates(conn, cfg, dirs, read));
      kamalProxy = read;
    }
    await step(host, "trying the new Traefik configuration", () => tryConfiguration(conn, cfg, { envFile, dirs, hex, next }, secrets));
    if (kamalProxy) {
      const read = kamalProxy;
      // A stopped Traefik left beside kamal-proxy (Kamal 2 prunes it too) would hold the name.
      await conn.run(docker.removeContainers([TRAEFIK_CONTAINER], false));
      const adopted = await step(host, "adopting kamal-proxy's routes", () => adoptKamalProxyRoutes(conn, cfg, dirs.routes, read));
      progress(host, `taking over from kamal-proxy: Traefik serves ${adopted.join(", ") || "no service"} as kamal-proxy did`);
    } else if (!incumbent.ours) progress(host, `taking over ${describeIncumbent(incumbent)}`);
    const handed = await step(host, "handing the port over to the new Traefik", () => handOver(conn, cfg, incumbent, { next, hex, envFile, dirs }));
    retired = handed.retired;
    progress(host, handed.gapless ? "Traefik replaced; no connection was refused" : `Traefik replaced (port closed for ~${handed.closedMs}ms)`);
  } else if (incumbent) {
    // A stopped Traefik serves nothing: the new one takes its name at once.
    progress(host, "starting Traefik (the previous one was stopped)");
    await step(host, "starting Traefik", () => conn.exec(replaceTraefik(TRAEFIK_CONTAINER, `${TRAEFIK_CONTAINER}_old_${hex}`, next, 1)));
    retired = { name: `${TRAEFIK_CONTAINER}_old_${hex}`, renamed: true };
  } else {
    progress(host, "starting Traefik");
    await step(host, "starting Traefik", async () => {
      await conn.exec(docker.renameContainer(next, TRAEFIK_CONTAINER));
      await conn.exec(docker.startContainer(TRAEFIK_CONTAINER));
    });
  }
  await step(host, "checking that Traefik stays up", async () => {
    try {
      await waitRunning(conn, secrets, envFile);
    } catch (e) {
      if (!retired) throw e;
      // The previous proxy serves again; the new Traefik is kept, stopped, for its logs.
      const failed = `${TRAEFIK_CONTAINER}_failed_${hex}`;
      const back = await conn.run(
        retired.renamed
          ? replaceTraefik(TRAEFIK_CONTAINER, failed, retired.name, 1)
          : Command.allOf(docker.stopContainer(TRAEFIK_CONTAINER, 1), docker.renameContainer(TRAEFIK_CONTAINER, failed), docker.startContainer(retired.name)),
      );
      const outcome = back.code === 0 ? `the previous proxy (${retired.renamed ? TRAEFIK_CONTAINER : retired.name}) runs again` : `putting the previous proxy back failed too: ${back.stderr.trim()}`;
      throw new Error(`${(e as Error).message}\nthe new Traefik was kept as ${failed} for its logs; ${outcome}`);
    }
  });
  if (retired?.renamed) await conn.run(docker.removeContainers([retired.name], true));
  const facts = await containerFacts(conn, TRAEFIK_CONTAINER);
  return { containerId: facts?.containerId ?? "", status: facts?.status ?? "missing", restartedAt: new Date().toISOString() };
}

/** The route files and the ACME store the host's Traefik mounts, copied to where the new one
 * will (the run directory changed): the routes it serves and the certificates it holds go
 * with it, so the new Traefik serves the same from its first request. */
async function carryProxyFiles(conn: SshConnection, host: string, dirs: TraefikDirs) {
  const r = await conn.run(docker.inspectContainer(TRAEFIK_CONTAINER, "{{range .Mounts}}{{.Destination}}={{.Source}}\n{{end}}"));
  if (r.code !== 0) return;
  const mounts = new Map(r.stdout.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  for (const [inside, to] of [[ROUTES_IN_TRAEFIK, dirs.routes], [ACME_IN_TRAEFIK, dirs.acme]]) {
    const from = mounts.get(inside);
    if (!from || from === to) continue;
    progress(host, `copying ${from} to ${to} (the run directory changed)`);
    await conn.exec(copyProxyFiles(from, to));
  }
}

/** The plugin's sources, where Traefik loads local plugins from (rewritten at every start:
 * the same content, so a repeat changes nothing). */
async function writePlugin(conn: SshConnection, dir: string) {
  const files = traefikPluginFiles();
  await conn.exec(docker.makeDirectories([...new Set(files.map((f) => `${dir}/${f.path.slice(0, f.path.lastIndexOf("/"))}`))]));
  for (const f of files) await conn.exec(docker.writeFileAtomically(`${dir}/${f.path}`, f.content), { stdin: f.content });
}

/** A trial Traefik's configuration counts as accepted once it starts its providers (past
 * validating its configuration and building its entrypoints), or once it has kept running
 * this long (a log level that hides that line). */
const TRIAL_MS = 5000;
const STARTED = /Starting provider/;

/** Runs the new configuration beside the serving Traefik (no port, no network) for a moment:
 * one that Traefik refuses fails here, before the running Traefik is touched. */
async function tryConfiguration(conn: SshConnection, cfg: TraefikContainerConfig, at: { envFile?: string; dirs: TraefikDirs; hex: string; next: string }, secrets: Secrets) {
  const trial = `${TRAEFIK_CONTAINER}_trial_${at.hex}`;
  try {
    await conn.exec(trialTraefik(cfg, { name: trial, envFile: at.envFile, dirs: at.dirs }));
    const t0 = Date.now();
    for (;;) {
      const [status] = (await conn.run(docker.containerState(trial))).stdout.trim().split(" ");
      if (status !== "running" && status !== "created") {
        const logs = await lastLogs(conn, trial, secrets, at.envFile);
        await conn.run(docker.removeContainers([at.next], true));
        throw new Error(`Traefik ${status === "exited" ? "exits at once" : `is ${status}`} with the new configuration; the running Traefik was not touched:\n${logs}`);
      }
      if (status === "running" && STARTED.test((await conn.run(docker.containerLogs(trial, 50))).stdout)) return;
      if (Date.now() - t0 >= TRIAL_MS) return;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await conn.run(docker.removeContainers([trial], true));
  }
}

/** Traefik counts as started once it has stayed running, with no restart and no exit, for
 * two seconds: a crash-looping Traefik (restarted by its restart policy) fails the check. */
async function waitRunning(conn: SshConnection, secrets: Secrets, envFile?: string) {
  const t0 = Date.now();
  for (;;) {
    const [status, , restarts] = (await conn.run(docker.containerState(TRAEFIK_CONTAINER))).stdout.trim().split(" ");
    const restarted = Number(restarts) > 0;
    if (restarted || (status !== "running" && status !== "created")) {
      const logs = await lastLogs(conn, TRAEFIK_CONTAINER, secrets, envFile);
      throw new Error(`Traefik ${restarted ? `restarted ${restarts} time(s)` : `is ${status}`} after starting:\n${logs}`);
    }
    if (status === "running" && Date.now() - t0 >= 2000) return;
    if (Date.now() - t0 > 30_000) throw new Error(`Traefik is still ${status} 30s after starting`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

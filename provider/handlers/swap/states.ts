/**
 * The swap: one role of a service on one host moves to a new version with zero downtime, as
 * a small machine of named states: each state is a method of HostSwap, `run` walks them in
 * order, and `revert` is the one transition out of a failure.
 *
 *     prepare → start → probe → switch → watch → settle → drain → done
 *                         └──── any failure here ────┘
 *                                    ↓
 *                                  revert (throws; the old version serves)
 *
 * | state   | what happens                                                  | bounded by              |
 * |---------|---------------------------------------------------------------|-------------------------|
 * | prepare | route checked; rollout turn; same-version copy renamed aside; | lock wait, boot delay   |
 * |         | an exclusive role's old containers stopped; cord; assets      |                         |
 * | start   | the new container runs beside the old ones                    | the executor's deadline |
 * | probe   | until it is ready to take traffic                             | healthcheck deadline    |
 * | switch  | traffic reaches it (one route rewrite, or Traefik's labels)   | Traefik's route deadline|
 * | watch   | it stays healthy, old containers kept ready                   | `watch` seconds         |
 * | settle  | the rollout's other hosts pass too (onFailure: revert)        | the slowest host        |
 * | drain   | old containers leave rotation and stop; retention prunes      | `stopWaitTime`          |
 * | revert  | traffic back, new container stopped and kept for its logs,    | `stopWaitTime` (≤ 10 s) |
 * |         | an exclusive role's containers started again                  |                         |
 *
 * How traffic moves is the host's routing mode (./traffic.ts); the probes are ./probes.ts;
 * what is kept afterwards is ./retention.ts.
 */
import type { AppOutputFields } from "../../config/outputs";
import { readFile } from "../../commands/files";
import { randomBytes } from "node:crypto";
import type { AppContainerConfig } from "../../config/schemas";
import { assetDirs, cleanUpAssets, containerName, extractAssets, failedName, replacedName, runAppContainer, syncAssetVolumes, type ScopeContainer } from "../../commands/app";
import * as docker from "../../commands/docker";
import type { SshConnection } from "../../ssh/executor";
import { tail } from "../../ssh/redact";
import { absolute, audit, changeOnce, connectionLost, containerFacts, progress, rootCause, Secrets, sleep, step, StepError } from "../common";
import type { TraefikRouting } from "../routing";
import { RolloutFailed, type RolloutMember } from "../rollout";
import { engineGone } from "../../engineWatch";
import { containerStatus, exists, watchServing } from "./probes";
import { prune, pruneFailed, scopeContainers } from "./retention";
import { trafficFor, type Traffic } from "./traffic";

/** What the swap read from the host before taking the deploy lock. */
export interface HostFacts {
  pulled: boolean;
  containers: ScopeContainer[];
  home: string;
  routing?: TraefikRouting;
}

/** What a swap records: the container that serves (config/outputs.ts). */
export type SwapOutputs = AppOutputFields;

/** The innermost message, without the executor's "ssh <address>: " (the step names the host). */
export function rootMessage(e: unknown): string {
  const root = rootCause(e);
  return (root instanceof Error ? root.message : String(root)).replace(/^ssh [^:]+: /, "");
}

/** What failed, for the other hosts of a rollout: the step and its innermost message. */
export function failureOf(e: unknown): string {
  return e instanceof StepError ? `${e.step}: ${rootMessage(e)}` : rootMessage(e);
}

/** The audit log a scope's lines go to, and their role tag. */
export function auditScope(cfg: AppContainerConfig) {
  return { service: cfg.service, destination: cfg.destination, role: cfg.role, runDirectory: cfg.runDirectory };
}

export class HostSwap {
  /** Traffic may have reached the new container. */
  private switched = false;
  private readonly host: string;
  private readonly name: string;
  private readonly image: string;
  private traffic!: Traffic;
  /** The running containers the new one replaces (a same-version copy under its aside name). */
  private old: string[] = [];
  private existing?: ScopeContainer;
  private aside?: string;
  /** An exclusive role's containers, stopped before the start. */
  private stoppedFirst: string[] = [];
  private envFile?: string;
  private assetVolume?: string;

  constructor(
    private readonly conn: SshConnection,
    private readonly cfg: AppContainerConfig,
    private readonly secrets: Secrets,
    private readonly facts: HostFacts,
    private readonly member?: RolloutMember,
    /** When the deploy of this host began (its progress lines count from there). */
    private readonly t0 = Date.now(),
  ) {
    this.host = cfg.hostName;
    this.name = containerName(cfg);
    this.image = `${cfg.image}:${cfg.version}`;
  }

  /** Runs every state in turn. Throws, leaving the old version serving, when the new one
   * does not become ready or fails its watch. */
  async run(): Promise<SwapOutputs> {
    await this.prepare();
    await this.start();
    try {
      await this.probe();
      this.engineStillThere();
      await this.switch();
      await this.watch();
      await this.settle();
      this.engineStillThere();
    } catch (e) {
      if (connectionLost(e)) throw this.lost(e as Error);
      return this.revert(e as Error);
    }
    return this.drain();
  }

  /** The engine that asked for this swap is gone (killed): nothing would record the new
   * version, so the swap goes back to the one that served, which the state keeps. */
  private engineStillThere() {
    if (engineGone()) throw new Error("the Pulumi engine that ran this deploy is gone (killed); nothing would record the new version");
  }

  private took() {
    return `${((Date.now() - this.t0) / 1000).toFixed(1)}s`;
  }

  private async prepare() {
    const { conn, cfg, host, name, facts } = this;
    this.traffic = await step(host, "checking the route", async () => trafficFor(conn, cfg, facts.routing, facts.home, name, () => this.took()));
    // A rollout's later phases start once every earlier host has switched and passed.
    const member = this.member;
    if (member && member.phase > 0) {
      progress(host, `waiting for the hosts of earlier boot batches (rollout phase ${member.phase})`);
      await step(host, "waiting for its turn in the rollout", () => member.turn());
      if (cfg.bootDelay > 0) {
        progress(host, `waiting ${cfg.bootDelay}s before this boot batch`);
        await sleep(cfg.bootDelay * 1000);
      }
    }
    this.old = facts.containers.filter((c) => c.running && c.name !== name).map((c) => c.name);
    // Same version again (an env change, a repair, a rollback to a retained version): the
    // existing copy steps aside under a new name; if it is serving, it is swapped out like
    // any old container.
    this.existing = facts.containers.find((c) => c.name === name);
    if (this.existing) {
      const aside = replacedName(name, randomBytes(4).toString("hex"));
      this.aside = aside;
      await step(host, `renaming ${name} to ${aside}`, () =>
        changeOnce(conn, docker.renameContainer(name, aside), async () => (await exists(conn, aside)) && !(await exists(conn, name))),
      );
      if (this.existing.running) this.old = [...this.old, aside];
    }
    // An exclusive role never runs two containers at once: the old ones stop first (and
    // start again if the new one fails).
    if (cfg.exclusive && this.old.length) {
      const old = this.old;
      progress(host, `stopping ${old.join(", ")} before starting ${name} (exclusive: the role never runs twice at once)`);
      await step(host, `stopping ${old.join(", ")} (exclusive)`, () => Promise.all(old.map((o) => this.traffic.retire(o))));
      this.stoppedFirst = old;
      this.old = [];
    }
    await this.traffic.prepare();
    this.envFile = cfg.envFile ? absolute(facts.home, cfg.envFile.path) : undefined;
    // Asset bridging: the new container mounts its assets and the previous version's; the
    // previous version's container gets the new ones, before any request can ask for them.
    if (cfg.assetPath) {
      const previous = facts.containers.find((c) => c.running && c.version !== cfg.version)?.version;
      progress(host, `bridging the assets of ${previous ?? "no earlier version"} and ${cfg.version}: either container serves both`);
      await step(host, `extracting the assets of ${this.image}`, () => conn.exec(extractAssets(cfg, facts.home)));
      await step(host, `bridging the assets of ${previous ?? "no earlier version"} and ${cfg.version}`, () => conn.exec(syncAssetVolumes(cfg, facts.home, previous)));
      this.assetVolume = assetDirs(facts.home, cfg, cfg.version).volume;
    }
  }

  private async start() {
    const { conn, cfg, host, name } = this;
    progress(host, `starting ${name} (${this.image})${this.old.length ? ` beside ${this.old.join(", ")}` : ""} (${this.took()})`);
    const run = runAppContainer(cfg, { name, cordDir: this.traffic.cord, envFile: this.envFile, routing: this.traffic.kind, assetVolume: this.assetVolume });
    try {
      await step(host, `starting ${name}`, () =>
        changeOnce(conn, run, async () => {
          const state = await containerStatus(conn, name);
          if (state === "created") await conn.exec(docker.startContainer(name));
          return state !== undefined;
        }),
      );
    } catch (e) {
      if (connectionLost(e)) throw this.lost(e as Error);
      throw e;
    }
  }

  private async probe() {
    await this.traffic.probe(this.name);
  }

  private async switch() {
    await this.traffic.switch(this.name, () => {
      this.switched = true;
    });
  }

  /** The watch window: the old containers keep running (out of rotation when routed by
   * route file) until the new one has stayed healthy for it. */
  private async watch() {
    if (this.cfg.watch <= 0) return;
    const { conn, cfg, name } = this;
    await step(this.host, `watching ${name} (${cfg.watch}s)`, () => watchServing(conn, cfg, name, this.traffic.kind === "routes", this.old));
  }

  /** The rollout: this host stays ready to go back until every host has passed. */
  private async settle() {
    const member = this.member;
    if (!member) return;
    member.passed();
    if (!member.failure) progress(this.host, `${this.name} passed; waiting for the rest of the rollout before stopping ${this.old.join(", ") || "nothing"}`);
    await step(this.host, "waiting for the rest of the rollout", () => member.settled());
  }

  /** The new container serves: the old ones drain and stop while what to record and what to
   * prune are read. */
  private async drain(): Promise<SwapOutputs> {
    const { conn, cfg, host, name, image, old, existing } = this;
    const alone = this.traffic.alone(name);
    if (alone) progress(host, `${alone} (${this.took()})`);
    const [facts, digestOut] = await Promise.all([
      step(host, `inspecting ${name}`, () => containerFacts(conn, name)),
      step(host, `reading the digest of ${image}`, () => conn.exec(docker.imageDigest(image))),
      step(host, `retiring ${old.join(", ") || "nothing"}`, () =>
        Promise.all([scopeContainers(conn, cfg), Promise.all(old.map((o) => this.traffic.retire(o)))]).then(([listed]) =>
          prune(conn, cfg, name, listed.map((c) => (old.includes(c.name) ? { ...c, running: false } : c))),
        ),
      ),
    ]);
    // Only this version serves now: the other versions' asset directories go (Kamal's way).
    if (cfg.assetPath) await step(host, "removing earlier versions' assets", () => conn.exec(cleanUpAssets(cfg, this.facts.home)));
    const { containerId, imageId } = facts ?? { containerId: "", imageId: "" };
    const digest = digestOut.stdout.trim().split(" ");
    progress(host, `${name} is serving${old.length ? `; stopped ${old.join(", ")}` : ""} (${this.took()})`);
    const was = this.facts.containers.find((c) => c.running && c.name !== name)?.version ?? (existing?.running ? cfg.version : undefined);
    const rolledBack = existing && !existing.running;
    await audit(conn, host, auditScope(cfg), `${rolledBack ? "Rolled back app to" : "Started app"} version ${cfg.version}${was ? ` (was ${was})` : ""}`);
    return { containerName: name, containerId, imageId, imageDigest: digest[1] ?? digest[0], runningVersion: cfg.version, status: "running", pulled: this.facts.pulled };
  }

  /** A failure after the start: traffic goes back to the containers that served before (if
   * it had moved at all), the new container leaves and is kept for its logs, an exclusive
   * role's stopped containers start again. Always throws, naming the step that failed. */
  private async revert(e: Error): Promise<never> {
    const { conn, cfg, host, name, aside, old, switched, traffic } = this;
    // First when traffic had moved; beside the cleanup when it had not (the route is only checked).
    const restored = traffic.restore(old, switched).catch(() => undefined);
    if (switched) await restored;
    try {
      // One that took traffic leaves rotation and finishes its in-flight requests first.
      // What the report shows is read meanwhile: a failed deploy ends soon after its
      // deadline (the steps that follow run side by side where they can).
      const [, more] = await Promise.all([traffic.withdraw(name, switched), failureDetails(conn, name, this.secrets, this.envFile, cfg.healthcheck?.logLines), restored]);
      // The failed container is kept (the newest failed one only) for its logs, under a
      // name that no retention or rollback counts; the copy that stepped aside gets its
      // name back.
      const reverted = rootCause(e) instanceof RolloutFailed;
      if (!reverted) this.member?.fail(failureOf(e));
      const failed = failedName(name, randomBytes(4).toString("hex"));
      await Promise.all([
        (async () => {
          await conn.run(docker.renameContainer(name, failed));
          if (aside) await conn.run(docker.renameContainer(aside, name));
        })(),
        pruneFailed(conn, cfg, failed),
      ]);
      const back = this.stoppedFirst.map((o) => (o === aside ? name : o));
      if (back.length) {
        progress(host, `starting ${back.join(", ")} again`);
        await traffic.restart(back);
      }
      const serving = back.length
        ? `${back.join(", ")} was started again and serves`
        : old.length
          ? `${old.map((o) => (o === aside ? name : o)).join(", ")} keeps serving${switched ? " (traffic went back to it)" : ""}`
          : "no earlier container was running";
      const stepName = (e as StepError).step ?? "booting";
      await audit(conn, host, auditScope(cfg), `${reverted ? "Reverted" : "Failed to start"} app version ${cfg.version} (${reverted ? "onFailure: revert" : stepName}); ${serving}`);
      if (reverted) {
        throw new StepError(host, "reverting (onFailure: revert)", e, `${rootMessage(e)}, so this host went back: ${name} was stopped and kept as ${failed}, ${serving}`);
      }
      throw new StepError(host, stepName, e, `${rootMessage(e)}; it was stopped and kept as ${failed} for its logs, ${serving}.\n${more}`);
    } catch (cleanup) {
      if (cleanup instanceof StepError && cleanup.cause === e) throw cleanup;
      if (connectionLost(cleanup)) throw this.lost(e);
      throw cleanup;
    }
  }

  /** The connection dropped mid-swap and did not come back: say what serves on the host. */
  private lost(e: Error): Error {
    const host = e instanceof StepError ? e.host : "";
    const stepName = e instanceof StepError ? e.step : "swapping";
    return new StepError(host, stepName, e, `${rootMessage(e)}. ${this.traffic.lost(this.name, this.old, this.switched)}; the next \`pulumi up\` converges`);
  }
}

/** Health log and last log lines of a failed container; the env file's values become
 * secrets of the operation, so the report can never show them. */
async function failureDetails(conn: SshConnection, name: string, secrets: Secrets, envFile?: string, logLines = 30): Promise<string> {
  const [env, healthOut, logsOut] = await Promise.all([
    envFile ? conn.run(readFile(envFile)) : undefined,
    conn.run(docker.containerHealthLog(name)),
    conn.run(docker.containerLogs(name, logLines)),
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
  const logs = tail(logsOut.stdout, logLines) || "(no output)";
  // Docker's own health log, when the container has a health check Docker runs.
  return `${health ? `--- health check log (last 5) ---\n${health}\n` : ""}--- last log lines of ${name} ---\n${logs}`;
}

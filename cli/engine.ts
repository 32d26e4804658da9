/**
 * The Kamal-like front end over the Pulumi engine (the Pulumi CLI on the project's own
 * program): `deploy`, `redeploy`, `rollback`, `preview`, `maintenance`, `live`. Each says what
 * it does in Kamal's terms, streams the provider's progress lines as they happen, and ends
 * with the engine's summary; a failure is the engine's error lines, not a stack trace. An
 * update is one `pulumi up` (the version config set by the same command); nothing runs before
 * it that the update does not need, nor after it.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { gitState, kamalVersion } from "../components/buildContext";
import { MAINTENANCE_CONFIG, parseOperatorMaintenance } from "../components/maintenanceConfig";
import { ACCESSORIES_ENV } from "../components/accessoriesApplied";
import { parseProxyReboots, PROXY_REBOOT_CONFIG } from "../components/proxyRebootConfig";
import { LineSplitter } from "./lines";
import { STACK_CONFIG } from "./programConfig";
import { backendUrlOf, bareConfigKey, exportStack, firstError, localCheckpoint, projectOf, pulumi, restoreConfigFile, stackConfig, stackConfigText, type Project } from "./pulumi";
import type { Deployed } from "./stack";
import { backendFailure, leftByDeadProcess, lockedMessage, stackLocks } from "./backend";
import { EngineError, LockRefused, UsageError } from "./usage";

export { EngineError };

export interface EngineOptions {
  dir: string;
  stack: string;
  write: (line: string) => void;
  /** Kamal's `-v`: every line of the engine's output, not only the progress. */
  verbose?: boolean;
}

/** What the program init writes reads to leave the build out for one run (`--skip-push`,
 * rollbacks, maintenance): "skip" (KamalApp's build false), or "keep" for a stack that has
 * built before (its image stays declared and recorded as it is: a targeted update of the
 * apps must find every resource and dependency where the last update left them). */
export const BUILD_ENV = "PULUMI_KAMAL_BUILD";

type StateResources = { resources?: { urn: string; type: string }[] };

function project(o: EngineOptions): Project {
  const p = projectOf(o.dir);
  if (!p) throw new UsageError(`no Pulumi project in ${o.dir}: run this in the project's directory or give --cwd`);
  return p;
}

/** The engine's output as Kamal-like lines: the provider's progress (`host: message`), the
 * resources' outcome and the summary; everything else (the tree) is left out. */
export function progressLine(line: string): string | undefined {
  const progress = /\[kamal\] (.*)$/.exec(line);
  if (progress) return `  ${progress[1]}`;
  if (/^\s+(error|warning): /.test(line)) return line.trim();
  if (/^(Resources:|\s+[+~-] \d+ |\s+[+~-]?\d+ (unchanged|to (create|update|delete|replace))|Duration: )/.test(line)) return line.replace(/^\s+/, "  ");
  return undefined;
}

interface RunOptions {
  target?: string[];
  exclude?: string[];
  /** Stack config set by the update itself (`--config`: saved to the stack's file). */
  config?: Record<string, string>;
  /** The build left out: "keep" when the stack has built before. */
  build?: "skip" | "keep";
  /** Resources replaced (`--replace`). */
  replace?: string[];
  /** Environment of the program. */
  env?: Record<string, string>;
  message: string;
}

/** Runs `up` (or a preview) streaming Kamal-like lines; throws the engine's error lines, or
 * LockRefused when another deployer holds the stack's lock in the backend. A lock left by a
 * deploy of this machine whose process is gone (kill -9) is cleared, said, and the run goes on. */
async function run(o: EngineOptions, what: "up" | "preview", opts: RunOptions): Promise<RunResult> {
  try {
    return await runOnce(o, what, opts);
  } catch (e) {
    const locks = e instanceof StackLocked ? e.locks : undefined;
    if (!locks) throw e;
    if (!locks.length || !locks.every(leftByDeadProcess)) throw new LockRefused(lockedMessage(o.stack, locks));
    o.write(`The stack's lock was left by a deploy on this machine that no longer runs (pid ${locks.map((l) => l.pid).join(", ")}, since ${locks[0].at}): clearing it, and reading what that deploy left on the hosts`);
    await unlockStack(o.dir, o.stack, o.write);
    return await runOnce(o, what, opts);
  }
}

/** What an update did, for scripts (`--json`): the engine's counts by outcome ("updated",
 * "unchanged", "to update"…), and how long it took. */
export interface RunResult {
  changes: Record<string, number>;
  seconds: number;
}

/** The engine's closing counts: "+ 8 created", "~ 2 updated", "6 unchanged", "+ 1 to create". */
export function summaryCounts(lines: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of lines) {
    const m = /^\s+(?:[+~-]|\+-)?\s*(\d+) ((?:to )?(?:create|update|delete|replace)d?|created|updated|deleted|replaced|unchanged)$/.exec(l);
    if (m) counts[m[2]] = Number(m[1]);
  }
  return counts;
}

/** The engine refused the run: the stack is locked by these. */
class StackLocked extends Error {
  constructor(readonly locks: ReturnType<typeof stackLocks> & object) {
    super("the stack is locked");
  }
}

/**
 * A stack a killed deploy left locked, made ready for the next one: `pulumi cancel` (a DIY
 * backend's lock files removed, or Pulumi Cloud's update canceled), then `pulumi refresh`:
 * the state reads what the hosts run now (a route the killed swap left half moved is drift
 * there, which the next deploy repairs), and creates it left pending are dropped (their
 * containers are found and replaced by the next deploy).
 */
export async function unlockStack(dir: string, stack: string, write: (line: string) => void): Promise<void> {
  const r = await pulumi(dir, ["cancel", "--yes", "--stack", stack]);
  if (r.code !== 0) throw new EngineError(`could not clear the lock of stack ${stack}: ${firstError(r.stderr || r.stdout)}`);
  write(`Stack ${stack}: lock cleared (pulumi cancel)`);
  const refreshed = await pulumi(dir, ["refresh", "--yes", "--skip-preview", "--clear-pending-creates", "--message", "pulumi-kamal unlock: what a killed deploy left", "--color", "never", "--stack", stack]);
  if (refreshed.code !== 0) throw new EngineError(`stack ${stack}: lock cleared, but reading the hosts failed (pulumi refresh): ${firstError(refreshed.stderr || refreshed.stdout)}`);
  const changed = /^\s+~ (\d+) updated/m.exec(refreshed.stdout)?.[1];
  write(`Stack ${stack}: state read from the hosts (pulumi refresh)${changed ? `: ${changed} resource${changed === "1" ? "" : "s"} differed from the state (a deploy repairs them)` : ""}`);
}

async function runOnce(o: EngineOptions, what: "up" | "preview", opts: RunOptions): Promise<RunResult> {
  const seen: string[] = [];
  // An error of the engine's Diagnostics, with the lines indented under it (a program's
  // exception, a command's output).
  const errors: string[] = [];
  let inError = false;
  // The engine says each progress line as it happens and again in its closing Diagnostics:
  // once is enough.
  let inDiagnostics = false;
  const split = new LineSplitter((raw) => {
    const l = raw.replace(/\x1b\[[0-9;]*m/g, "");
    seen.push(l);
    if (/^Diagnostics:/.test(l)) inDiagnostics = true;
    else if (/^(Resources:|Outputs:|Duration:)/.test(l)) inDiagnostics = false;
    const err = /^\s*error: (.*)$/.exec(l);
    if (err) {
      errors.push(err[1]);
      inError = true;
    } else if (inError && l.trim() && !/^(Resources:|Outputs:|Duration:|\s*[+~-] \S+:|\s+\S+:\S+ \(|\S.*:$)/.test(l)) {
      // An exception's stack is left out: the message says what failed, and where.
      if (!/^\s+at /.test(l)) errors[errors.length - 1] += `\n${l.trim()}`;
      return;
    } else {
      inError = false;
    }
    if (inDiagnostics && what === "up" && /\[kamal\] /.test(l)) return;
    const shown = what === "preview" || o.verbose ? l : progressLine(l);
    if (shown !== undefined && !err) o.write(shown);
  });
  const args = [
    what,
    "--stack", o.stack,
    "--message", opts.message,
    "--color", "never",
    ...(what === "up" ? ["--yes", "--skip-preview"] : ["--diff"]),
    ...Object.entries(opts.config ?? {}).flatMap(([k, v]) => ["--config", `${k}=${v}`]),
    ...(opts.target ?? []).flatMap((t) => ["--target", t]),
    ...(opts.exclude ?? []).flatMap((t) => ["--exclude", t]),
    ...(opts.replace ?? []).flatMap((t) => ["--replace", t]),
  ];
  const t0 = Date.now();
  const r = await pulumi(o.dir, args, { env: { ...opts.env, [BUILD_ENV]: opts.build ?? "" }, onOutput: (c) => split.push(c) });
  split.end();
  if (r.code !== 0) {
    const locks = stackLocks(r.stderr + r.stdout);
    if (locks) throw new StackLocked(locks);
    const lost = backendFailure(r.stderr + r.stdout, backendUrlOf(o.dir));
    if (lost) throw new EngineError(lost);
    const said = [...new Set(errors)].filter((l) => !/^update failed$|^preview failed$/.test(l));
    throw new EngineError(said.length ? said.join("\n") : firstError(r.stderr || r.stdout));
  }
  const seconds = Number(((Date.now() - t0) / 1000).toFixed(1));
  if (what === "up") o.write(`Finished all in ${seconds.toFixed(1)} seconds`);
  return { changes: summaryCounts(seen), seconds };
}

/** Kamal's version for a deploy from the project: the git commit, with `_uncommitted_` when
 * deploy.yml's builder builds the working directory (a context) and it has uncommitted
 * changes, exactly when Kamal adds it. deploy.yml is read only then. */
export async function deployVersion(dir: string, destination?: string): Promise<string> {
  let contextDir: string | undefined;
  const deployYml = path.join(dir, "config/deploy.yml");
  if (existsSync(deployYml) && gitState(dir)?.uncommitted) {
    const { loadKamalConfig } = await import("../kamal/config");
    const context = loadKamalConfig({ file: deployYml, destination }).builder.context;
    if (context !== undefined) contextDir = path.resolve(dir, context);
  }
  try {
    return kamalVersion(dir, { contextDir });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/: give a version$/, ": give --version V"));
  }
}

export interface DeployOptions {
  version?: string;
  versionKey?: string;
  target?: string[];
  what?: string;
  /** The command, in the update's message (`pulumi stack history`): "pulumi-kamal deploy v2". */
  command?: string;
  /** Leave the build out (Kamal's --skip-push): the registry's `image:version` deploys. */
  skipPush?: boolean;
  /** The stack's resources, when the caller has read them already. */
  state?: StateResources;
}

/** The version to set, and what the stack's config said before (to put back on failure). */
async function versionFor(o: EngineOptions, opts: { version?: string; versionKey?: string }): Promise<{ key: string; version: string; current?: string }> {
  const p = project(o);
  const config = stackConfig(o.dir, p, o.stack);
  const key = opts.versionKey ?? STACK_CONFIG.version;
  const current = config[bareConfigKey(p, key)];
  return { key, current, version: opts.version ?? (await deployVersion(o.dir, config[STACK_CONFIG.destination])) };
}

/** Whether the stack has built an image (its build is then kept as it is when skipped): from
 * the state given, else the local checkpoint's text, else the exported state. */
async function buildMode(o: EngineOptions, opts: { skipPush?: boolean; state?: StateResources }): Promise<"skip" | "keep" | undefined> {
  if (!opts.skipPush) return undefined;
  if (!opts.state) {
    const checkpoint = localCheckpoint(o.dir, project(o), o.stack);
    if (checkpoint !== undefined) return checkpoint.includes(`"${IMAGE_TYPE}"`) ? "keep" : "skip";
  }
  const state = opts.state ?? (await exportStack(o.dir, o.stack).catch(() => ({ deployment: {} }))).deployment ?? {};
  return imageUrns(state).length ? "keep" : "skip";
}

const IMAGE_TYPE = "pulumi-nodejs:dynamic/kamal:Image";

/** What a deploy did, for scripts: the version it deployed, the one before, the engine's counts. */
export interface DeployResult extends RunResult {
  version: string;
  previous?: string;
}

export async function deploy(o: EngineOptions, opts: DeployOptions): Promise<DeployResult> {
  const { key, version, current } = await versionFor(o, opts);
  o.write(`${opts.what ?? "Deploying"} version ${version} (stack ${o.stack}, config ${key})`);
  const settings = stackConfigText(o.dir, o.stack);
  try {
    const r = await run(o, "up", { target: opts.target, config: { [key]: version }, build: await buildMode(o, opts), message: `pulumi-kamal ${opts.command ?? "deploy"} ${version}` });
    return { version, previous: current, ...r };
  } catch (e) {
    // A failed deploy leaves the previous version serving: the config says so again, so that
    // the next `pulumi up` (anyone's) does not retry this one unasked.
    if (!(e instanceof EngineError)) throw e;
    if (version !== current && !restoreConfigFile(o.dir, project(o), o.stack, key, settings)) {
      const r = await pulumi(o.dir, current === undefined ? ["config", "rm", key, "--stack", o.stack] : ["config", "set", key, current, "--stack", o.stack]);
      if (r.code !== 0) throw new EngineError(`${e.message}\n(the stack's ${key} config could not be put back to ${current ?? "unset"}: ${firstError(r.stderr)})`);
    }
    throw new EngineError(`${e.message}\n(the stack's ${key} config is back to ${current ?? "unset"}: the next \`pulumi up\` keeps every host on it, or puts it back)`);
  }
}

/** Kamal's redeploy: the image and the apps only (containers, env files, release command,
 * hooks), not the accessories or Traefik. */
export async function redeploy(o: EngineOptions, opts: { version?: string; versionKey?: string; skipPush?: boolean }): Promise<DeployResult> {
  const state = (await exportStack(o.dir, o.stack)).deployment ?? {};
  const target = appTargets(state);
  if (!target.length) throw new UsageError(`stack ${o.stack} has no apps deployed yet: run pulumi-kamal deploy first`);
  // Kamal's redeploy builds too, unless --skip-push.
  return deploy(o, { ...opts, state, target: opts.skipPush ? target : [...target, ...imageUrns(state)], what: "Redeploying", command: "redeploy" });
}

/** The images the stack built (Image resources). */
export function imageUrns(state: StateResources): string[] {
  return (state.resources ?? []).filter((r) => r.type === IMAGE_TYPE).map((r) => r.urn);
}

/** What a deploy of that version would change (the version recorded as deploy records it). */
export async function preview(o: EngineOptions, opts: { version?: string; versionKey?: string; skipPush?: boolean } = {}): Promise<DeployResult> {
  const { key, version, current } = await versionFor(o, opts);
  o.write(`Previewing version ${version} (stack ${o.stack}, config ${key})`);
  const r = await run(o, "preview", { config: { [key]: version }, build: await buildMode(o, opts), message: "pulumi-kamal preview" });
  return { version, previous: current, ...r };
}

/** The resources of the apps (containers, env files, release, hooks): what a redeploy moves. */
export function appTargets(state: StateResources): string[] {
  // Not the pre-build hook: a rollback builds nothing.
  return (state.resources ?? []).filter((r) => /^pulumi-nodejs:dynamic\/kamal:(AppContainer|EnvFile|Release|Hook)$/.test(r.type) && !r.urn.endsWith("-hook-pre-build")).map((r) => r.urn);
}

/**
 * Kamal's rollback: back to a version whose containers the hosts still have (stopped,
 * retained), so no pull. Refused when a host of the primary role no longer has it.
 */
export async function rollback(o: EngineOptions, d: Deployed, version: string, opts: { versionKey?: string }): Promise<DeployResult> {
  const [{ primaryRole }, { connect }, { containerName }, { inspectContainer }] = await Promise.all([import("./select"), import("./remote"), import("../provider/commands/app"), import("../provider/commands/docker")]);
  const role = primaryRole(d.apps);
  const primary = d.apps.filter((a) => a.cfg.role === role);
  if (!primary.length) throw new UsageError(`stack ${o.stack} has no app containers to roll back`);
  // Every host at once: the check costs one round trip, not one per host.
  const kept = await Promise.all(
    primary.map(async (a) => {
      const name = containerName({ ...a.cfg, version });
      return (await (await connect(a.cfg.connection)).run(inspectContainer(name, "{{.Name}}"))).code === 0;
    }),
  );
  const missing = primary.filter((_, i) => !kept[i]).map((a) => a.cfg.hostName);
  if (missing.length) {
    throw new UsageError(`the app version ${version} is not available as a container on ${missing.join(", ")} (\`pulumi-kamal details\` shows what runs; \`pulumi stack history\` lists what was deployed); \`pulumi-kamal deploy --version ${version}\` deploys it anyway, pulling its image`);
  }
  // Kamal's rollback boots the apps only, from what the hosts kept: no build, no pull; the
  // stack's built image stays as it is (the next deploy of it builds nothing).
  return deploy(o, { version, versionKey: opts.versionKey, what: "Rolling back to", command: "rollback", target: appTargets(d), state: d, skipPush: true });
}

/** `maintenance` / `live`: the operator's switch in the stack's config, then an update of the
 * service's routed containers only (their route files: seconds, no container changes). */
export async function maintenance(o: EngineOptions, d: Deployed, services: string[], on: { message?: string } | false): Promise<void> {
  const current = parseOperatorMaintenance(stackConfig(o.dir, project(o), o.stack)[MAINTENANCE_CONFIG]);
  for (const s of services) {
    if (on) current[s] = on.message ? { message: on.message } : {};
    else delete current[s];
  }
  const routed = d.apps.filter((a) => services.includes(a.cfg.service) && a.cfg.traefik);
  if (!routed.length) throw new UsageError(`no role of ${services.join(", ")} is behind Traefik: maintenance mode is Traefik's answer`);
  o.write(`${on ? `Maintenance mode for ${services.join(", ")}${on.message ? ` ("${on.message}")` : ""}` : `Live again: ${services.join(", ")}`} (stack config ${MAINTENANCE_CONFIG})`);
  const config = Object.keys(current).length ? { [MAINTENANCE_CONFIG]: JSON.stringify(current) } : undefined;
  if (!config) {
    const r = await pulumi(o.dir, ["config", "rm", MAINTENANCE_CONFIG, "--stack", o.stack]);
    if (r.code !== 0) throw new EngineError(firstError(r.stderr || r.stdout));
  }
  const names = new Set(routed.map((a) => a.resource));
  const target = (d.resources ?? []).filter((r) => r.type.endsWith(":AppContainer") && names.has(r.urn.slice(r.urn.lastIndexOf("::") + 2))).map((r) => r.urn);
  await run(o, "up", { target, config, build: (await buildMode(o, { skipPush: true, state: d })) ?? "skip", message: on ? "pulumi-kamal maintenance" : "pulumi-kamal live" });
}

/**
 * Kamal's `accessory boot|reboot NAME|all`: an update of those accessories only (their
 * containers and secret env files) that applies what the program says of them now (a deploy
 * leaves running accessories as they are); reboot also replaces each container (stopped,
 * removed and run again, its data directory kept), as Kamal's does. An accessory not
 * deployed yet is booted by an update of the whole stack that changes nothing else.
 */
export async function accessory(o: EngineOptions, d: Deployed, what: "boot" | "reboot", names: string[]): Promise<void> {
  const all = names.includes("all");
  const chosen = d.accessories.filter((a) => all || names.includes(a.cfg.name));
  const known = new Set(d.accessories.map((a) => a.cfg.name));
  const missing = all ? [] : names.filter((n) => !known.has(n));
  if (what === "reboot" && missing.length) throw new UsageError(`no accessory ${missing.join(", ")} is deployed in stack ${o.stack}${known.size ? ` (accessories: ${[...known].join(", ")})` : ""}: boot it first`);
  const wipes = chosen.filter((a) => a.cfg.deleteDataOnDestroy);
  if (what === "reboot" && wipes.length) throw new UsageError(`accessory ${wipes[0].cfg.name} deletes its data when removed (deleteDataOnDestroy): a reboot would delete it; change it in the program instead`);
  const urnOf = (name: string) => d.resources.find((r) => r.urn.endsWith(`::${name}`))?.urn;
  const containers = chosen.map((a) => urnOf(a.resource)).filter((u): u is string => !!u);
  // Each host's secret env file: "<component>-env-<host>" beside "<component>-<host>".
  const envFiles = chosen.map((a) => {
    const host = a.cfg.hostName.replace(/[^A-Za-z0-9_.-]/g, "_");
    return urnOf(`${a.resource.slice(0, -host.length - 1)}-env-${host}`);
  }).filter((u): u is string => !!u);
  o.write(`${what === "boot" ? "Booting" : "Rebooting"} ${all ? "every accessory" : `accessory ${names.join(", ")}`} (stack ${o.stack})`);
  await run(o, "up", {
    target: missing.length ? undefined : [...containers, ...envFiles],
    replace: what === "reboot" ? containers : undefined,
    env: { [ACCESSORIES_ENV]: all ? "apply" : names.join(",") },
    build: (await buildMode(o, { skipPush: true, state: d })) ?? "skip",
    message: `pulumi-kamal accessory ${what} ${names.join(" ")}`,
  });
}

/**
 * Kamal's `proxy reboot [--rolling]`: each host's Traefik restarted (the port handed over: no
 * connection refused, unlike kamal-proxy's reboot), all at once or, rolling, host by host, with
 * `before`/`after` around each group (the pre- and post-proxy-reboot hooks). The reboot times
 * go in the stack config (PROXY_REBOOT_CONFIG), which the Traefik component reads.
 */
export async function proxyReboot(o: EngineOptions, d: Deployed, opts: { rolling: boolean; host?: string; before: (hosts: string[]) => Promise<void>; after: (hosts: string[]) => Promise<void> }): Promise<void> {
  // -h as every command takes it: names or addresses, Kamal's patterns.
  const { onHost } = await import("./select");
  const chosen = d.traefiks.filter((t) => onHost(opts.host, t));
  if (!chosen.length) throw new UsageError(`stack ${o.stack} has no Traefik${opts.host ? ` on ${opts.host}` : ""} to reboot`);
  const urnOf = (name: string) => d.resources.find((r) => r.urn.endsWith(`::${name}`))?.urn;
  for (const group of opts.rolling ? chosen.map((t) => [t]) : [chosen]) {
    const hosts = group.map((t) => t.cfg.hostName);
    o.write(`Rebooting Traefik on ${hosts.join(", ")} (stack ${o.stack}; the port handed over, no connection refused)`);
    await opts.before(hosts);
    const reboots = parseProxyReboots(stackConfig(o.dir, project(o), o.stack)[PROXY_REBOOT_CONFIG]);
    const at = new Date().toISOString();
    for (const h of hosts) reboots[h] = at;
    const target = group.map((t) => urnOf(t.resource)).filter((u): u is string => !!u);
    await run(o, "up", { target, config: { [PROXY_REBOOT_CONFIG]: JSON.stringify(reboots) }, build: (await buildMode(o, { skipPush: true, state: d })) ?? "skip", message: "pulumi-kamal proxy reboot" });
    await opts.after(hosts);
  }
}

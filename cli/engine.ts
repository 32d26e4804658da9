/**
 * The Kamal-like front end over the Pulumi engine (Automation API, the project's own
 * program): `deploy`, `redeploy`, `rollback`, `preview`, `maintenance`, `live`. Each says what
 * it does in Kamal's terms, streams the provider's progress lines as they happen, and ends
 * with the engine's summary; a failure is the engine's error lines, not a stack trace.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { kamalVersion } from "../components/buildContext";
import { loadKamalConfig } from "../kamal/config";
import { MAINTENANCE_CONFIG, parseOperatorMaintenance } from "../components/service";
import { containerName } from "../provider/commands/app";
import { shellJoin } from "../provider/commands/shell";
import { STACK_CONFIG } from "./init";
import { LineSplitter } from "./logs";
import { connect } from "./remote";
import { primaryRole } from "./select";
import type { Deployed } from "./stack";
import { firstLine, UsageError } from "./stack";

export interface EngineOptions {
  dir: string;
  stack: string;
  write: (line: string) => void;
}

/** What the program init writes reads to leave the build out for one run (`--skip-push`,
 * rollbacks, maintenance): "skip" (KamalApp's build false), or "keep" for a stack that has
 * built before (its image stays declared and recorded as it is: a targeted update of the
 * apps must find every resource and dependency where the last update left them). */
export const BUILD_ENV = "PULUMI_KAMAL_BUILD";

/** A deploy the engine refused or that failed: its error lines. */
export class EngineError extends Error {}

async function open(o: EngineOptions, env: { build?: "skip" | "keep" } = {}): Promise<Stack> {
  try {
    return await LocalWorkspace.selectStack({ stackName: o.stack, workDir: o.dir }, { envVars: { [BUILD_ENV]: env.build ?? "" } });
  } catch (e) {
    throw new UsageError(`cannot select stack ${o.stack} in ${o.dir}: ${firstLine(e)}`);
  }
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

/** Runs `up` (or a preview) streaming Kamal-like lines; throws the engine's error lines. */
async function run(o: EngineOptions, what: "up" | "preview", opts: { target?: string[]; exclude?: string[]; skipPush?: boolean; message: string }): Promise<void> {
  const first = await open(o);
  const built = opts.skipPush ? imageUrns(((await first.exportStack()) as StateExport).deployment ?? {}).length > 0 : false;
  const stack = opts.skipPush ? await open(o, { build: built ? "keep" : "skip" }) : first;
  // An error of the engine's Diagnostics, with the lines indented under it (a program's
  // exception, a command's output).
  const errors: string[] = [];
  let inError = false;
  const split = new LineSplitter((raw) => {
    const l = raw.replace(/\x1b\[[0-9;]*m/g, "");
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
    const shown = what === "preview" ? l : progressLine(l);
    if (shown !== undefined && !err) o.write(shown);
  });
  const t0 = Date.now();
  try {
    const scope = { target: opts.target, ...(opts.exclude?.length ? { exclude: opts.exclude } : {}) };
    if (what === "up") await stack.up({ onOutput: (c) => split.push(c), ...scope, color: "never", message: opts.message });
    else await stack.preview({ onOutput: (c) => split.push(c), ...scope, diff: true, color: "never", message: opts.message });
    split.end();
  } catch (e) {
    split.end();
    const said = [...new Set(errors)].filter((l) => !/^update failed$/.test(l));
    throw new EngineError(said.length ? said.join("\n") : firstLine(e));
  }
  if (what === "up") o.write(`Finished all in ${((Date.now() - t0) / 1000).toFixed(1)} seconds`);
}

/** Kamal's version for a deploy from the project: the git commit, with `_uncommitted_` when
 * deploy.yml's builder builds the working directory (a context) and it has uncommitted
 * changes, exactly when Kamal adds it. */
export function deployVersion(dir: string, destination?: string): string {
  let contextDir: string | undefined;
  const deployYml = path.join(dir, "config/deploy.yml");
  if (existsSync(deployYml)) {
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
  /** Leave the build out (Kamal's --skip-push): the registry's `image:version` deploys. */
  skipPush?: boolean;
}

export async function deploy(o: EngineOptions, opts: DeployOptions): Promise<void> {
  const stack = await open(o);
  const restore = await setVersion(o, stack, opts, opts.what ?? "Deploying");
  try {
    await run(o, "up", { target: opts.target, skipPush: opts.skipPush, message: `pulumi-kamal ${(opts.what ?? "deploy").toLowerCase()}` });
  } catch (e) {
    // A failed deploy leaves the previous version serving: the config says so again, so that
    // the next `pulumi up` (anyone's) does not retry this one unasked.
    if (!(e instanceof EngineError)) throw e;
    const previous = await restore();
    throw new EngineError(`${e.message}\n(the stack's ${opts.versionKey ?? STACK_CONFIG.version} config is back to ${previous ?? "unset"}: the next \`pulumi up\` keeps every host on it, or puts it back)`);
  }
}

/** Kamal's redeploy: the apps only (containers, env files, release command, hooks), not the
 * accessories or Traefik. */
export async function redeploy(o: EngineOptions, opts: { version?: string; versionKey?: string; skipPush?: boolean }): Promise<void> {
  const stack = await open(o);
  const state = ((await stack.exportStack()) as StateExport).deployment ?? {};
  const target = appTargets(state);
  if (!target.length) throw new UsageError(`stack ${o.stack} has no apps deployed yet: run pulumi-kamal deploy first`);
  // Kamal's redeploy builds too, unless --skip-push.
  await deploy(o, { ...opts, target: opts.skipPush ? target : [...target, ...imageUrns(state)], what: "Redeploying" });
}

type StateExport = { deployment?: { resources?: { urn: string; type: string }[] } };

/** The images the stack built (Image resources). */
export function imageUrns(state: { resources?: { urn: string; type: string }[] }): string[] {
  return (state.resources ?? []).filter((r) => r.type === "pulumi-nodejs:dynamic/kamal:Image").map((r) => r.urn);
}

/** What a deploy of that version would change (the version recorded as deploy records it). */
export async function preview(o: EngineOptions, opts: { version?: string; versionKey?: string; skipPush?: boolean } = {}): Promise<void> {
  await setVersion(o, await open(o), opts, "Previewing");
  await run(o, "preview", { skipPush: opts.skipPush, message: "pulumi-kamal preview" });
}

/** Sets the version config: the one given, else the project's current commit (Kamal's
 * version, as `kamal deploy` takes it), whatever the stack ran before; resolves with a
 * function that puts the previous value back. */
async function setVersion(o: EngineOptions, stack: Stack, opts: { version?: string; versionKey?: string }, what: string): Promise<() => Promise<string | undefined>> {
  const key = opts.versionKey ?? STACK_CONFIG.version;
  const current = (await stack.getConfig(key).catch(() => undefined))?.value;
  const destination = opts.version === undefined ? (await stack.getConfig(STACK_CONFIG.destination).catch(() => undefined))?.value : undefined;
  const version = opts.version ?? deployVersion(o.dir, destination);
  if (version !== current) await stack.setConfig(key, { value: version });
  o.write(`${what} version ${version} (stack ${o.stack}, config ${key})`);
  return async () => {
    if (version === current) return current;
    if (current === undefined) await stack.removeConfig(key);
    else await stack.setConfig(key, { value: current });
    return current;
  };
}

/** The resources of the apps (containers, env files, release, hooks): what a redeploy moves. */
export function appTargets(state: { resources?: { urn: string; type: string }[] }): string[] {
  // Not the pre-build hook: a rollback builds nothing.
  return (state.resources ?? []).filter((r) => /^pulumi-nodejs:dynamic\/kamal:(AppContainer|EnvFile|Release|Hook)$/.test(r.type) && !r.urn.endsWith("-hook-pre-build")).map((r) => r.urn);
}

/**
 * Kamal's rollback: back to a version whose containers the hosts still have (stopped,
 * retained), so no pull. Refused when a host of the primary role no longer has it.
 */
export async function rollback(o: EngineOptions, d: Deployed, version: string, opts: { versionKey?: string }): Promise<void> {
  const role = primaryRole(d.apps);
  const primary = d.apps.filter((a) => a.cfg.role === role);
  if (!primary.length) throw new UsageError(`stack ${o.stack} has no app containers to roll back`);
  const missing: string[] = [];
  for (const a of primary) {
    const name = containerName({ ...a.cfg, version });
    const r = await (await connect(a.cfg.connection)).run(shellJoin(["docker", "container", "inspect", "--format", "{{.Name}}", name]));
    if (r.code !== 0) missing.push(a.cfg.hostName);
  }
  if (missing.length) {
    throw new UsageError(`the app version ${version} is not available as a container on ${missing.join(", ")} (\`pulumi-kamal details\` shows what runs; \`pulumi stack history\` lists what was deployed); \`pulumi-kamal deploy --version ${version}\` deploys it anyway, pulling its image`);
  }
  // Kamal's rollback boots the apps only, from what the hosts kept: no build, no pull; the
  // stack's built image stays as it is (the next deploy of it builds nothing).
  await deploy(o, { version, versionKey: opts.versionKey, what: "Rolling back to", target: appTargets(((await (await open(o)).exportStack()) as StateExport).deployment ?? {}), skipPush: true });
}

/** `maintenance` / `live`: the operator's switch in the stack's config, then an update of the
 * service's routed containers only (their route files: seconds, no container changes). */
export async function maintenance(o: EngineOptions, d: Deployed, services: string[], on: { message?: string } | false): Promise<void> {
  const stack = await open(o);
  const current = parseOperatorMaintenance((await stack.getConfig(MAINTENANCE_CONFIG).catch(() => undefined))?.value);
  for (const s of services) {
    if (on) current[s] = on.message ? { message: on.message } : {};
    else delete current[s];
  }
  if (Object.keys(current).length) await stack.setConfig(MAINTENANCE_CONFIG, { value: JSON.stringify(current) });
  else await stack.removeConfig(MAINTENANCE_CONFIG);
  const routed = d.apps.filter((a) => services.includes(a.cfg.service) && a.cfg.traefik);
  if (!routed.length) throw new UsageError(`no role of ${services.join(", ")} is behind Traefik: maintenance mode is Traefik's answer`);
  o.write(`${on ? `Maintenance mode for ${services.join(", ")}${on.message ? ` ("${on.message}")` : ""}` : `Live again: ${services.join(", ")}`} (stack config ${MAINTENANCE_CONFIG})`);
  const state = (await stack.exportStack()) as { deployment?: { resources?: { urn: string; type: string }[] } };
  const names = new Set(routed.map((a) => a.resource));
  const target = (state.deployment?.resources ?? []).filter((r) => r.type.endsWith(":AppContainer") && names.has(r.urn.slice(r.urn.lastIndexOf("::") + 2))).map((r) => r.urn);
  await run(o, "up", { target, skipPush: true, message: on ? "pulumi-kamal maintenance" : "pulumi-kamal live" });
}

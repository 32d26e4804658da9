/**
 * The Kamal-like front end over the Pulumi engine (Automation API, the project's own
 * program): `deploy`, `redeploy`, `rollback`, `preview`, `maintenance`, `live`. Each says what
 * it does in Kamal's terms, streams the provider's progress lines as they happen, and ends
 * with the engine's summary; a failure is the engine's error lines, not a stack trace.
 */
import { spawnSync } from "node:child_process";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
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

/** A deploy the engine refused or that failed: its error lines. */
export class EngineError extends Error {}

async function open(o: EngineOptions): Promise<Stack> {
  try {
    return await LocalWorkspace.selectStack({ stackName: o.stack, workDir: o.dir });
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
async function run(o: EngineOptions, what: "up" | "preview", opts: { target?: string[]; message: string }): Promise<void> {
  const stack = await open(o);
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
    if (what === "up") await stack.up({ onOutput: (c) => split.push(c), target: opts.target, color: "never", message: opts.message });
    else await stack.preview({ onOutput: (c) => split.push(c), target: opts.target, diff: true, color: "never", message: opts.message });
    split.end();
  } catch (e) {
    split.end();
    const said = [...new Set(errors)].filter((l) => !/^update failed$/.test(l));
    throw new EngineError(said.length ? said.join("\n") : firstLine(e));
  }
  if (what === "up") o.write(`Finished all in ${((Date.now() - t0) / 1000).toFixed(1)} seconds`);
}

/** Kamal's version default: the git commit of the project (with Kamal's suffix when the
 * working tree has uncommitted changes). */
export function gitVersion(dir: string): string {
  const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: dir, encoding: "utf8" });
  if (head.status !== 0) throw new UsageError(`no version given and ${dir} is not in a git repository with a commit: give --version V`);
  const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: dir, encoding: "utf8" });
  return head.stdout.trim() + (dirty.stdout.trim() ? `_uncommitted_${Date.now().toString(16)}` : "");
}

export async function deploy(o: EngineOptions, opts: { version?: string; versionKey?: string; target?: string[]; what?: string }): Promise<void> {
  const restore = await setVersion(o, await open(o), opts, opts.what ?? "Deploying");
  try {
    await run(o, "up", { target: opts.target, message: `pulumi-kamal ${(opts.what ?? "deploy").toLowerCase()}` });
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
export async function redeploy(o: EngineOptions, opts: { version?: string; versionKey?: string }): Promise<void> {
  const stack = await open(o);
  const target = appTargets(((await stack.exportStack()) as { deployment?: { resources?: { urn: string; type: string }[] } }).deployment ?? {});
  if (!target.length) throw new UsageError(`stack ${o.stack} has no apps deployed yet: run pulumi-kamal deploy first`);
  await deploy(o, { ...opts, target, what: "Redeploying" });
}

/** What a deploy of that version would change (the version recorded as deploy records it). */
export async function preview(o: EngineOptions, opts: { version?: string; versionKey?: string } = {}): Promise<void> {
  await setVersion(o, await open(o), opts, "Previewing");
  await run(o, "preview", { message: "pulumi-kamal preview" });
}

/** Sets the version config when one is given or none is set yet (then the git commit);
 * resolves with a function that puts the previous value back. */
async function setVersion(o: EngineOptions, stack: Stack, opts: { version?: string; versionKey?: string }, what: string): Promise<() => Promise<string | undefined>> {
  const key = opts.versionKey ?? STACK_CONFIG.version;
  const current = (await stack.getConfig(key).catch(() => undefined))?.value;
  const version = opts.version ?? current ?? gitVersion(o.dir);
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
  return (state.resources ?? []).filter((r) => /^pulumi-nodejs:dynamic\/kamal:(AppContainer|EnvFile|Release|Hook)$/.test(r.type)).map((r) => r.urn);
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
  await deploy(o, { version, versionKey: opts.versionKey, what: "Rolling back to" });
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
  await run(o, "up", { target, message: on ? "pulumi-kamal maintenance" : "pulumi-kamal live" });
}

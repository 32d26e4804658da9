/** What every handler shares: the SSH pool, validation, progress lines, diffs, redaction. */
import type { Command } from "../commands/command";
import { homeDirectory, readFile } from "../commands/files";
import type { z } from "zod";
import { problemsFrom } from "../config/errors";
import { changes, containsUnknown, effectOf, secretsIn, UNKNOWN } from "../config/fields";
import type { Effect } from "../config/declare";
import type { SshConnectionConfig } from "../config/values";
import { spawnSync } from "node:child_process";
import os from "node:os";
import { auditFile, auditLine, kamalTime, recordAudit } from "../commands/audit";
import { containerLogs, containerSummary } from "../commands/docker";
import { ConnectionLostError } from "../ssh/errors";
import type { ExecOptions, SshConnection } from "../ssh/executor";
import { SshPool } from "../ssh/pool";
import { redact } from "../ssh/redact";
import { toTarget } from "../ssh/target";

export { toTarget };

export { containsUnknown, UNKNOWN };

/** Progress goes to stdout, which `pulumi up` shows under the stack. */
export function progress(host: string, message: string): void {
  console.log(`[kamal] ${host}: ${message}`);
}

/** Kamal's performer: the git user's email (in `cwd`), else the login name. */
export function performer(cwd = process.cwd()): string {
  const git = spawnSync("git", ["config", "user.email"], { cwd, encoding: "utf8" });
  return (git.status === 0 && git.stdout.trim()) || os.userInfo().username;
}

let performerHere: string | undefined;

/** Appends a line to the host's audit log of the service (Kamal's `kamal audit`). Never
 * fails what it records: a line that cannot be written is said as a progress line. */
export async function audit(
  conn: SshConnection,
  host: string,
  scope: { service: string; destination?: string; role?: string; runDirectory?: string },
  message: string,
): Promise<void> {
  performerHere ??= performer();
  const line = auditLine({ recordedAt: kamalTime(), performer: performerHere, destination: scope.destination, role: scope.role }, message);
  const r = await conn.run(recordAudit(auditFile(scope.service, scope.destination, scope.runDirectory), line)).catch((e: Error) => ({ code: 1, stderr: e.message }));
  if (r.code !== 0) progress(host, `could not append to the audit log: ${r.stderr.trim()}`);
}

let shared: SshPool | undefined;

/** One pool per provider process: one connection per host, shared by all resources; made
 * on first use (importing this module opens and starts nothing). */
export function providerPool(): SshPool {
  return (shared ??= new SshPool((m) => console.log(`[kamal] ${m}`)));
}

export function connect(c: SshConnectionConfig): Promise<SshConnection> {
  return providerPool().connect(toTarget(c));
}

export interface ContainerFacts {
  containerId: string;
  imageId: string;
  status: string;
  version: string;
}

/** What a container is now (containerSummary), or undefined when there is none. */
export async function containerFacts(conn: SshConnection, name: string): Promise<ContainerFacts | undefined> {
  const r = await conn.run(containerSummary(name));
  if (r.code !== 0) return undefined;
  const [containerId, imageId, status, version = ""] = r.stdout.trim().split(" ");
  return { containerId, imageId, status, version };
}

/** `read` for a resource that is one named container: refresh records its real status,
 * "missing" when it is gone (drift the next `up` repairs). */
export async function readContainer(
  id: string,
  props: Record<string, unknown>,
  secrets: Secrets,
  connection: SshConnectionConfig,
  name: string,
): Promise<{ id: string; props: Record<string, unknown> }> {
  return secrets.guard(async () => {
    const facts = await containerFacts(await connect(connection), name);
    if (!facts) return { id, props: { ...props, status: "missing", containerId: "" } };
    return { id, props: { ...props, containerId: facts.containerId, status: facts.status } };
  });
}

const homes = new WeakMap<SshConnection, Promise<string>>();

/** The SSH user's home directory on the host (where Kamal keeps .kamal/). */
export function remoteHome(conn: SshConnection): Promise<string> {
  let home = homes.get(conn);
  if (!home) {
    home = conn.exec(homeDirectory()).then((r) => r.stdout.trim());
    homes.set(conn, home);
  }
  return home;
}

export function absolute(home: string, path: string): string {
  return path.startsWith("/") ? path : `${home}/${path}`;
}

/**
 * The one redaction point: every error leaving a handler operation passes through
 * `guard`, which replaces every secret the config declares (its schema says which) and
 * every secret found on the way (env-file values read for a failure report).
 */
export class Secrets {
  private readonly values = new Set<string>();

  constructor(schema: z.core.$ZodType, cfg: unknown) {
    this.add(secretsIn(schema, cfg));
  }

  add(values: Iterable<string>): void {
    for (const v of values) if (v.length > 0) this.values.add(v);
  }

  /** Env-file content: each value is a secret. */
  addEnvFile(content: string): void {
    for (const line of content.split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0 && line.length > eq + 1) this.add([line.slice(eq + 1).trim()]);
    }
  }

  redact(text: string): string {
    return redact(text, this.values);
  }

  list(): string[] {
    return [...this.values];
  }

  /** Runs an operation; an error leaving it is the same error (its class, its fields, for
   * callers that ask what failed) with every secret replaced in its message, stack, string
   * fields and causes. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.scrub(e instanceof Error ? e : new Error(String(e)), new Set());
    }
  }

  private scrub(err: Error, seen: Set<Error>): Error {
    if (seen.has(err)) return err;
    seen.add(err);
    err.message = this.redact(err.message);
    if (err.stack) err.stack = this.redact(err.stack);
    for (const [key, v] of Object.entries(err)) {
      if (typeof v === "string") Reflect.set(err, key, this.redact(v));
      else if (v instanceof Error) this.scrub(v, seen);
    }
    if (err.cause instanceof Error) this.scrub(err.cause, seen);
    return err;
  }
}

export interface CheckFailure {
  property: string;
  reason: string;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const k of path) {
    if (v === UNKNOWN) return UNKNOWN;
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * Validates resolved inputs. Problems under a value not known yet (preview) are not
 * problems. `pathOf` maps an input key to its path in the component's arguments.
 */
export function validate<S extends z.ZodType>(
  schema: S,
  news: Record<string, unknown>,
  pathOf: (key: string) => string,
): { value?: z.output<S>; failures: CheckFailure[] } {
  const clean = Object.fromEntries(Object.entries(news).filter(([k]) => k !== "__provider"));
  const result = schema.safeParse(clean);
  if (result.success) return { value: result.data, failures: [] };
  const failures: CheckFailure[] = [];
  for (const issue of result.error.issues) {
    const at = valueAt(clean, issue.path);
    if (at === UNKNOWN || containsUnknownAncestor(clean, issue.path)) continue;
    // An unknown top-level key is reported at the path the component would give it.
    const expanded =
      issue.code === "unrecognized_keys" && issue.path.length === 0
        ? issue.keys.map((k) => ({ head: k, issue: { ...issue, path: [], keys: [] as string[] }, key: k }))
        : [{ head: issue.path.map(String)[0], issue: { ...issue, path: issue.path.slice(1) }, key: undefined }];
    for (const e of expanded) {
      const prefix = e.head === undefined ? "" : pathOf(e.head);
      const problems = e.key !== undefined ? [{ path: prefix, message: "is not a supported key" }] : problemsFrom([e.issue as z.core.$ZodIssue], prefix);
      // No property named: the engine would print that property's whole value beside the
      // reason, secrets included (a connection's key). The reason starts with the path.
      for (const p of problems) failures.push({ property: "", reason: `${p.path}: ${p.message}` });
    }
  }
  return { failures };
}

function containsUnknownAncestor(value: unknown, path: readonly PropertyKey[]): boolean {
  for (let i = 0; i < path.length; i++) if (valueAt(value, path.slice(0, i)) === UNKNOWN) return true;
  return false;
}

export interface Plan {
  /** The strongest effect of the changed fields (undefined: nothing changed). */
  effect?: Effect;
  /** Changed fields, dotted, with their effects. */
  changed: Map<string, Effect>;
}

/** What an update from `olds` to `news` does, from the schema's declared effects. */
export function plan(schema: z.core.$ZodType, olds: Record<string, unknown>, news: Record<string, unknown>): Plan {
  const changed = changes(schema, olds, news);
  return { effect: effectOf(changed), changed };
}

/**
 * The diff every resource makes: a changed field is a change with its declared effect
 * (`replace` fields make a replacement); a container that refresh found not running
 * (drift) is a change, so the next `up` repairs it; a provider text of an earlier release
 * (one that named a path on some machine) is a change, so the state gets the portable one.
 */
export function diffResource(schema: z.core.$ZodType, olds: Record<string, unknown>, news: Record<string, unknown>) {
  const { changed } = plan(schema, olds, news);
  // A value not known yet (preview) is a change, never yet a replacement: the `up` decides
  // with the real value.
  const replaces = [...new Set([...changed].filter(([k, e]) => e === "replace" && !unknownAt(news, k.split("."))).map(([k]) => k.split(".")[0]))];
  const drifted = olds.status !== undefined && olds.status !== "running";
  return { changes: changed.size > 0 || drifted || providerMoved(olds, news), replaces };
}

function unknownAt(value: unknown, path: string[]): boolean {
  for (let i = 0; i <= path.length; i++) if (valueAt(value, path.slice(0, i)) === UNKNOWN) return true;
  return false;
}

export function providerMoved(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  return typeof olds.__provider === "string" && typeof news.__provider === "string" && news.__provider !== UNKNOWN && olds.__provider !== news.__provider;
}

/** Whether an update must act on the host (anything beyond `record`), or the container is
 * not running. */
export function mustAct(schema: z.core.$ZodType, olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  const { effect } = plan(schema, olds, news);
  return (effect !== undefined && effect !== "record") || (olds.status !== undefined && olds.status !== "running");
}

export function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

export function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** An error that names the host and the step it happened in (every error a handler lets
 * reach the user is one). */
export class StepError extends Error {
  constructor(readonly host: string, readonly step: string, readonly cause: Error, detail?: string) {
    super(`${host}: ${step}: ${detail ?? cause.message.replace(/^ssh [^:]+: /, "")}`);
    this.name = "StepError";
  }
}

/** Runs one step of an operation on a host: an error leaving it names the host and step
 * (the innermost step wins). */
export async function step<T>(host: string, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError(host, name, e as Error);
  }
}

/** The root cause of an error, through StepError wrappers. */
export function rootCause(e: unknown): unknown {
  return e instanceof StepError ? rootCause(e.cause) : e;
}

export function connectionLost(e: unknown): boolean {
  return rootCause(e) instanceof ConnectionLostError;
}

/**
 * A change that must not run twice (docker run, rename). When the connection drops while it
 * was in flight, the host is read again once it is back: `tookEffect` says whether it
 * happened (and may finish it, e.g. start a created container); if not, it runs again.
 */
export async function changeOnce(conn: SshConnection, command: Command, tookEffect: () => Promise<boolean>, opts: ExecOptions = {}): Promise<void> {
  try {
    await conn.exec(command, opts);
  } catch (e) {
    if (!(e instanceof ConnectionLostError) || !e.mayHaveRun) throw e;
    progress(conn.name, "the connection dropped during a change; reading the host again to see whether it took effect");
    if (await tookEffect()) return;
    await conn.exec(command, opts);
  }
}

/** A failed container's last log lines, for an error. Its env file's values are added to the
 * secrets first: an app that logs its env must not put a secret in the error. */
export async function lastLogs(conn: SshConnection, name: string, secrets: Secrets, envFile?: string, lines = 20): Promise<string> {
  if (envFile) secrets.addEnvFile((await conn.run(readFile(envFile))).stdout);
  return (await conn.run(containerLogs(name, lines))).stdout;
}

/** What every handler shares: the SSH pool, validation, progress lines, diffs. */
import { isDeepStrictEqual } from "node:util";
import type { z } from "zod";
import { ConfigError, problemsFrom } from "../config/errors";
import type { SshConnectionConfig } from "../config/schemas";
import { containerSummary } from "../commands/docker";
import { SshPool, type SshConnection, type SshTarget } from "../ssh/executor";
import { redact } from "../ssh/redact";

/** The value the engine puts where an input is not known yet (during preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Progress goes to stdout, which `pulumi up` shows under the stack. */
export function progress(host: string, message: string): void {
  console.log(`[kamal] ${host}: ${message}`);
}

/** One pool per provider process: one connection per host, shared by all resources. */
export const pool = new SshPool((m) => console.log(`[kamal] ${m}`));

export function toTarget(c: SshConnectionConfig): SshTarget {
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    privateKey: c.privateKey,
    privateKeyPath: c.privateKeyPath,
    passphrase: c.passphrase,
    password: c.password,
    agent: c.agent,
    knownHosts: c.knownHosts,
    knownHostsPath: c.knownHostsPath,
    hostKey: c.hostKey,
    insecureIgnoreHostKey: c.insecureIgnoreHostKey,
    proxy: c.proxy ? toTarget(c.proxy) : undefined,
    connectTimeoutMs: c.connectTimeout * 1000,
    keepaliveIntervalMs: c.keepaliveInterval * 1000,
    dialAttempts: c.dialAttempts,
    maxChannels: c.maxChannels,
  };
}

export function connect(c: SshConnectionConfig): Promise<SshConnection> {
  return pool.connect(toTarget(c));
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
  connection: SshConnectionConfig,
  name: string,
): Promise<{ id: string; props: Record<string, unknown> }> {
  return redacting(connectionSecrets(connection), async () => {
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
    home = conn.exec('printf %s "$HOME"').then((r) => r.stdout.trim());
    homes.set(conn, home);
  }
  return home;
}

/** Every secret a config carries, for redaction. */
export function connectionSecrets(c?: SshConnectionConfig): string[] {
  if (!c) return [];
  return [c.privateKey, c.passphrase, c.password, ...connectionSecrets(c.proxy)].filter(
    (s): s is string => typeof s === "string" && s.length > 0,
  );
}

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
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

export interface CheckFailure {
  property: string;
  reason: string;
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
      const problems = e.key !== undefined ? [{ path: prefix, message: "is not a supported key" }] : problemsFrom([e.issue as never], prefix);
      for (const p of problems) failures.push({ property: e.head ?? "", reason: `${p.path}: ${p.message}` });
    }
  }
  return { failures };
}

function containsUnknownAncestor(value: unknown, path: readonly PropertyKey[]): boolean {
  for (let i = 0; i < path.length; i++) if (valueAt(value, path.slice(0, i)) === UNKNOWN) return true;
  return false;
}

/** Fields whose values differ (deeply) between two input sets. */
export function changedFields(olds: Record<string, unknown>, news: Record<string, unknown>, fields: readonly string[]): string[] {
  return fields.filter((f) => containsUnknown(news[f]) || !isDeepStrictEqual(norm(olds[f]), norm(news[f])));
}

/** undefined, null, {} and [] all mean "not set" for a diff. */
function norm(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v) && v.length === 0) return undefined;
  if (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0) return undefined;
  return v;
}

/** Runs `fn`, redacting secrets from any error it throws. */
export async function redacting<T>(secrets: readonly string[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error;
    const safe = new Error(redact(err.message, secrets));
    safe.name = err.name;
    safe.stack = redact(err.stack ?? "", secrets);
    throw safe;
  }
}

/** True when the inputs move to another machine (known and different host address). */
export function hostChanged(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  const host = (i: Record<string, unknown>) =>
    i.connection === UNKNOWN ? UNKNOWN : (i.connection as Record<string, unknown> | undefined)?.host;
  const next = host(news);
  return !containsUnknown(next) && host(olds) !== next;
}

/** Parses stored or new inputs for an operation: drops the serialized provider and the
 * runtime outputs, and reports problems with their config paths. */
export function parseInputs<S extends z.ZodType>(
  schema: S,
  props: Record<string, unknown>,
  runtimeKeys: readonly string[] = [],
): z.output<S> {
  const clean = Object.fromEntries(
    Object.entries(props).filter(([k]) => k !== "__provider" && !runtimeKeys.includes(k)),
  );
  const result = schema.safeParse(clean);
  if (!result.success) throw new ConfigError(problemsFrom(result.error.issues));
  return result.data;
}

/** Which input fields restart a container when they change, and which are only recorded. */
export interface FieldPolicy {
  restart: readonly string[];
  quiet: readonly string[];
}

/**
 * The diff every container resource makes: a change to any field is a change; a new host
 * address is a replacement; a container found not running by refresh (drift) is a change,
 * so that the next `up` repairs it.
 */
export function diffContainer(olds: Record<string, unknown>, news: Record<string, unknown>, fields: FieldPolicy) {
  const replaces = hostChanged(olds, news) ? ["connection"] : [];
  const changed = changedFields(olds, news, [...fields.restart, ...fields.quiet]);
  const drifted = olds.status !== undefined && olds.status !== "running";
  return { changes: changed.length > 0 || drifted || replaces.length > 0, replaces };
}

/** Whether an update must (re)start the container: a restart field changed, or it is not
 * running. */
export function mustRestart(olds: Record<string, unknown>, news: Record<string, unknown>, fields: FieldPolicy): boolean {
  return changedFields(olds, news, fields.restart).length > 0 || olds.status !== "running";
}

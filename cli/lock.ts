/**
 * `pulumi-kamal lock status | acquire -m MSG | release` on the deploy lock the provider takes
 * (Kamal 2's `.kamal/lock-<service>[-<destination>]`, on every host of the service), and
 * `pulumi-kamal audit`: the tail of each host's audit log.
 */
import { auditFile, kamalTime, revealAudit } from "../provider/commands/audit";
import { acquireLock, breakLock, lockDir, parseLockDetails, readLock, type LockDetails } from "../provider/commands/lock";
import { audit, lines, performer } from "../provider/handlers/common";
import { connect, eachHost, HostError } from "./remote";
import type { AppOnHost } from "./stack";
import { LockRefused } from "./usage";

export interface LockState {
  host: string;
  dir: string;
  held: boolean;
  details?: LockDetails;
  raw?: string;
}

const dirOf = (a: AppOnHost) => lockDir(a.cfg.service, a.cfg.destination, a.cfg.runDirectory);
const scopeOf = (a: AppOnHost) => ({ service: a.cfg.service, destination: a.cfg.destination, runDirectory: a.cfg.runDirectory });

export async function lockStatus(scopes: AppOnHost[]): Promise<{ states: LockState[]; errors: HostError[] }> {
  const { results, errors } = await eachHost(scopes, "reading the deploy lock", async (a) => {
    const conn = await connect(a.cfg.connection);
    const r = await conn.run(readLock(dirOf(a)));
    const state: LockState = { host: a.cfg.hostName, dir: dirOf(a), held: r.code === 0, details: r.code === 0 ? parseLockDetails(r.stdout) : undefined, raw: r.stdout };
    return state;
  });
  return { states: results.filter((s): s is LockState => !!s), errors };
}

export function formatLock(s: LockState): string {
  if (!s.held) return `${s.host}: there is no deploy lock (${s.dir})`;
  if (!s.details) return `${s.host}: ${s.dir} is held, details unreadable: ${(s.raw ?? "").trim().slice(0, 120)}`;
  return `${s.host}: ${s.dir}\n  Locked by: ${s.details.holder} at ${s.details.at}\n  Version: ${s.details.version}\n  Message: ${s.details.message}`;
}

export { LockRefused };

/** Takes the lock on every host, or on none: if one host refuses (held), the ones taken are
 * given back and the holder is named. */
export async function lockAcquire(scopes: AppOnHost[], message: string): Promise<LockState[]> {
  const details = (a: AppOnHost): LockDetails => ({ holder: performer(), at: kamalTime(), version: a.cfg.version, message });
  const taken: { a: AppOnHost; d: LockDetails }[] = [];
  const refused: string[] = [];
  const { errors } = await eachHost(scopes, "taking the deploy lock", async (a) => {
    const conn = await connect(a.cfg.connection);
    const d = details(a);
    const r = await conn.run(acquireLock(dirOf(a), d));
    if (r.code === 0) {
      taken.push({ a, d });
      return;
    }
    const held = await conn.run(readLock(dirOf(a)));
    if (held.code !== 0) throw new Error(r.stderr.trim() || `exit ${r.code}`);
    const h = parseLockDetails(held.stdout);
    refused.push(`${a.cfg.hostName}: ${dirOf(a)} is held by ${h ? `${h.holder} since ${h.at} (version ${h.version}, "${h.message}")` : "someone (details unreadable)"}`);
  });
  if (refused.length || errors.length) {
    for (const { a } of taken) await (await connect(a.cfg.connection)).run(breakLock(dirOf(a))).catch(() => undefined);
    if (errors.length) throw errors[0];
    throw new LockRefused(`the deploy lock is held, so none was taken: ${refused.join("; ")}. Wait for it, or release it with \`pulumi-kamal lock release\` if that holder is gone`);
  }
  for (const { a } of taken) await audit(await connect(a.cfg.connection), a.cfg.hostName, scopeOf(a), `Acquired the deploy lock: ${message}`);
  const order = (a: AppOnHost) => scopes.indexOf(a);
  return taken.sort((x, y) => order(x.a) - order(y.a)).map(({ a, d }) => ({ host: a.cfg.hostName, dir: dirOf(a), held: true, details: d }));
}

/** Removes the lock wherever it is held (whoever holds it: Kamal's `lock release`). */
export async function lockRelease(scopes: AppOnHost[]): Promise<{ released: string[]; errors: HostError[] }> {
  const { results, errors } = await eachHost(scopes, "releasing the deploy lock", async (a) => {
    const conn = await connect(a.cfg.connection);
    if ((await conn.run(readLock(dirOf(a)))).code !== 0) return undefined;
    await conn.exec(breakLock(dirOf(a)));
    await audit(conn, a.cfg.hostName, scopeOf(a), "Released the deploy lock");
    return a.cfg.hostName;
  });
  return { released: results.filter((h): h is string => !!h), errors };
}

/** The last lines of each host's audit log of the service, each prefixed with its host. */
export async function auditTail(scopes: AppOnHost[], n: number): Promise<{ lines: string[]; errors: HostError[] }> {
  const width = Math.max(...scopes.map((a) => a.cfg.hostName.length));
  const { results, errors } = await eachHost(scopes, "reading the audit log", async (a) => {
    const conn = await connect(a.cfg.connection);
    const r = await conn.exec(revealAudit(auditFile(a.cfg.service, a.cfg.destination, a.cfg.runDirectory), n));
    return lines(r.stdout).map((l) => `${a.cfg.hostName.padEnd(width)} | ${l}`);
  });
  return { lines: results.flatMap((r) => r ?? []), errors };
}

/**
 * The deploy lock of a (service, destination) on a host, held while this process changes
 * that service there (see commands/lock.ts for its place and format, Kamal 2's).
 *
 * - Taken before the first change on the host; released on success and on failure (only
 *   if it still holds our details), and on SIGINT/SIGTERM of the provider process.
 * - Held by this process already (two roles of one service on one host): shared.
 * - Held by another deploy ("Automatic deploy lock", Kamal's or ours): waited for, up to
 *   `lockWait` seconds, then refused naming the holder and since when.
 * - Held on purpose (`kamal lock acquire -m ...`): refused at once.
 * - Left by a run of this tool that no longer exists (same machine, its process gone, e.g.
 *   after kill -9): taken over, said in the progress.
 */
import os from "node:os";
import { acquireLock, AUTOMATIC_LOCK_MESSAGE, breakLock, lockDir, parseLockDetails, readLock, releaseLock, type LockDetails } from "../commands/lock";
import { kamalTime } from "../commands/audit";
import { RemoteCommandError } from "../ssh/errors";
import type { SshConnection } from "../ssh/executor";
import { changeOnce, progress, sleep, step } from "./common";
import { goneFromThisMachine } from "../processHere";

interface Held {
  count: number;
  details: LockDetails;
  conn: SshConnection;
  dir: string;
  host: string;
  /** Resolves once held: true when another holder had to be waited for (or taken over). */
  taking: Promise<boolean>;
}

const held = new Map<string, Held>();

/** Who we are, in the details: the tool, the stack when the engine says, user, machine, pid. */
function holderName(): string {
  const stack = process.env.PULUMI_STACK ? ` ${process.env.PULUMI_PROJECT ? `${process.env.PULUMI_PROJECT}/` : ""}${process.env.PULUMI_STACK}` : "";
  return `pulumi-kamal${stack} on ${os.userInfo().username}@${os.hostname()} pid ${process.pid}`;
}

/** A holder that was a run of this tool on this machine whose process is gone. */
function leftByDeadRun(holder: string): boolean {
  const m = / on [^@\s]+@(\S+) pid (\d+)$/.exec(holder);
  return !!m && holder.startsWith("pulumi-kamal") && goneFromThisMachine(m[1], Number(m[2]));
}

function describe(d: LockDetails | undefined, raw: string): string {
  return d ? `${d.holder} since ${d.at} (version ${d.version}, "${d.message}")` : `an unreadable lock (${raw.trim().slice(0, 80) || "no details"})`;
}

export class LockHeldError extends Error {
  constructor(host: string, dir: string, holder: string, why: string) {
    super(`the deploy lock ${dir} on ${host} is held by ${holder}; ${why}. If that deploy is gone, release the lock with \`kamal lock release\` or \`ssh <host> rm -r ${dir}\``);
    this.name = "LockHeldError";
  }
}

async function take(conn: SshConnection, host: string, dir: string, details: LockDetails, waitSeconds: number): Promise<boolean> {
  const deadline = Date.now() + waitSeconds * 1000;
  let told = false;
  for (let attempt = 0; ; attempt++) {
    try {
      await changeOnce(conn, acquireLock(dir, details), async () => {
        const r = await conn.run(readLock(dir));
        const now = parseLockDetails(r.stdout);
        return now?.holder === details.holder && now.at === details.at;
      });
      return attempt > 0;
    } catch (e) {
      if (!(e instanceof RemoteCommandError) || !/File exists/.test(e.stderrTail)) throw e;
    }
    const raw = (await conn.run(readLock(dir))).stdout;
    const theirs = parseLockDetails(raw);
    if (theirs && leftByDeadRun(theirs.holder)) {
      progress(host, `taking over the deploy lock ${dir} left by ${describe(theirs, raw)}: that process is gone`);
      await conn.exec(breakLock(dir));
      continue;
    }
    if (theirs && theirs.message !== AUTOMATIC_LOCK_MESSAGE) {
      throw new LockHeldError(host, dir, describe(theirs, raw), "it was taken on purpose, so this deploy does not wait");
    }
    if (Date.now() > deadline) {
      throw new LockHeldError(host, dir, describe(theirs, raw), `still held after waiting ${waitSeconds}s (lockWait)`);
    }
    if (!told) {
      progress(host, `waiting for the deploy lock ${dir}, held by ${describe(theirs, raw)} (up to ${waitSeconds}s)`);
      told = true;
    }
    await sleep(1000);
  }
}

/** Runs `fn` holding the (service, destination) deploy lock on the connection's host.
 * `lookups` (reads and pulls only: nothing that changes what runs) run while the lock is
 * being taken; `fn` gets their result and whether another holder was waited for (then what
 * they read may be out of date). */
export async function withLock<T, L = undefined>(
  conn: SshConnection,
  lock: { host: string; service: string; destination?: string; version: string; waitSeconds: number; runDirectory?: string },
  fn: (looked: L, waited: boolean) => Promise<T>,
  lookups?: () => Promise<L>,
): Promise<T> {
  const dir = lockDir(lock.service, lock.destination, lock.runDirectory);
  const key = `${conn.target.user ?? "root"}@${conn.name}:${conn.target.port ?? 22} ${dir}`;
  let entry = held.get(key);
  if (entry) {
    entry.count++;
  } else {
    const details: LockDetails = { holder: holderName(), at: kamalTime(), version: lock.version, message: AUTOMATIC_LOCK_MESSAGE };
    entry = { count: 1, details, conn, dir, host: lock.host, taking: step(lock.host, `taking the deploy lock ${dir}`, () => take(conn, lock.host, dir, details, lock.waitSeconds)) };
    held.set(key, entry);
  }
  const looked = lookups ? lookups() : Promise.resolve(undefined as L);
  let waited: boolean;
  try {
    waited = await entry.taking;
  } catch (e) {
    looked.catch(() => undefined);
    if (--entry.count === 0) held.delete(key);
    throw e;
  }
  try {
    return await fn(await looked, waited);
  } finally {
    if (--entry.count === 0) {
      held.delete(key);
      await conn.run(releaseLock(dir, entry.details)).catch((e) => progress(lock.host, `could not release the deploy lock ${dir}: ${(e as Error).message}`));
    }
  }
}

/** Releases every lock this process holds (on SIGINT/SIGTERM), within a few seconds. */
export async function releaseAll(): Promise<void> {
  const all = [...held.values()];
  held.clear();
  await Promise.race([
    Promise.all(all.map((h) => h.conn.run(releaseLock(h.dir, h.details), { timeoutMs: 3000 }).catch(() => undefined))),
    sleep(5000),
  ]);
}

let signalsHooked = false;
/** On SIGINT/SIGTERM the provider releases its locks before it exits. */
export function releaseOnSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void releaseAll().finally(() => process.exit(130));
    });
  }
}

/**
 * The hosts, through the provider's own SSH executor: the same host-key policy (the stack's
 * known hosts or pinned keys), deadlines and reconnects. One connection per host.
 */
import type { SshConnectionConfig } from "../provider/config/values";
import type { SshConnection } from "../provider/ssh/executor";
import { SshPool } from "../provider/ssh/pool";
import { toTarget } from "../provider/ssh/target";
import { opened } from "./lifecycle";
import { SSH_KEY_ENV } from "./programConfig";

const pool = new SshPool((m) => process.stderr.write(`${m}\n`));

export function connect(c: SshConnectionConfig): Promise<SshConnection> {
  opened.ssh = true;
  return pool.connect(toTarget(withDeployerKey(c)));
}

/** The connection with this machine's key when the environment gives one (SSH_KEY_ENV): the
 * state records the key of whoever deployed last, this command logs in with its own. */
export function withDeployerKey(c: SshConnectionConfig, env: NodeJS.ProcessEnv = process.env): SshConnectionConfig {
  const key = env[SSH_KEY_ENV];
  if (!key) return c;
  const own = { privateKey: key, privateKeyPath: undefined, privateKeys: undefined, privateKeyPaths: undefined, passphrase: undefined, agent: undefined };
  return { ...c, ...own, proxy: c.proxy && { ...c.proxy, ...own } };
}

export function closeAll(): void {
  pool.closeAll();
}

/** A failure on one host, named by it. */
export class HostError extends Error {
  constructor(
    readonly host: string,
    readonly step: string,
    cause: unknown,
  ) {
    super(`${host}: ${step}: ${(cause as Error).message ?? String(cause)}`);
  }
}

/** Runs `fn` for every item at once; the failures are collected (each naming its host). */
export async function eachHost<T extends { cfg: { hostName: string } }, R>(items: T[], step: string, fn: (item: T) => Promise<R>): Promise<{ results: (R | undefined)[]; errors: HostError[] }> {
  const settled = await Promise.allSettled(items.map((i) => fn(i)));
  const errors: HostError[] = [];
  const results = settled.map((s, k) => {
    if (s.status === "fulfilled") return s.value;
    errors.push(s.reason instanceof HostError ? s.reason : new HostError(items[k].cfg.hostName, step, s.reason));
    return undefined;
  });
  return { results, errors };
}

/**
 * How the executor reaches and authenticates to one host (milliseconds), and a
 * connection's config (seconds, as the schema has them) as such a target.
 */
import type { SshConnectionConfig } from "../config/values";

/** How to reach and authenticate to one host: the connection schema's fields
 * (config/values.ts), with times in milliseconds. */
export type SshTarget = Partial<Omit<SshConnectionConfig, "host" | "proxy" | "connectTimeout" | "keepaliveInterval" | "deadlines">> & {
  host: string;
  /** A bastion (jump host) to tunnel through. */
  proxy?: SshTarget;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Deadlines per kind of command, and how long a dropped connection is dialled again. */
  deadlines?: Partial<Deadlines>;
};

/** Milliseconds. */
export interface Deadlines {
  read: number;
  change: number;
  pull: number;
  reconnect: number;
}
export const DEFAULT_DEADLINES: Deadlines = { read: 30_000, change: 120_000, pull: 600_000, reconnect: 60_000 };

type Bastion = Omit<SshConnectionConfig, "proxy" | "deadlines">;

/** A connection's config as a target: the same fields, times in milliseconds. */
export function toTarget(c: Bastion & { proxy?: Bastion; proxyCommand?: string; deadlines?: SshConnectionConfig["deadlines"] }): SshTarget {
  const { proxy, connectTimeout, keepaliveInterval, deadlines, ...same } = c;
  return {
    ...same,
    proxy: proxy ? toTarget(proxy) : undefined,
    connectTimeoutMs: connectTimeout * 1000,
    keepaliveIntervalMs: keepaliveInterval * 1000,
    deadlines: deadlines && { read: deadlines.read * 1000, change: deadlines.change * 1000, pull: deadlines.pull * 1000, reconnect: deadlines.reconnect * 1000 },
  };
}

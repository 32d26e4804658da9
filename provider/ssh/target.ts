/**
 * How the executor reaches and authenticates to one host (milliseconds), and a
 * connection's config (seconds, as the schema has them) as such a target.
 */
import type { SshConnectionConfig } from "../config/values";

/** How to reach and authenticate to one host. */
export interface SshTarget {
  host: string;
  port?: number;
  user?: string;
  /** Private key text (PEM/OpenSSH). Preferred over privateKeyPath when both are set. */
  privateKey?: string;
  privateKeyPath?: string;
  passphrase?: string;
  password?: string;
  /** Use an ssh-agent: its socket path, or true for $SSH_AUTH_SOCK. */
  agent?: string | boolean;
  /** known_hosts text. */
  knownHosts?: string;
  knownHostsPath?: string;
  /** A pinned host key, "ssh-ed25519 AAAA…" (as in a known_hosts line, without the host). */
  hostKey?: string;
  /** Accept any host key. Off by default; only for throwaway hosts. */
  insecureIgnoreHostKey?: boolean;
  /** A bastion (jump host) to tunnel through. */
  proxy?: SshTarget;
  /** A local command carrying the connection on its stdin/stdout (OpenSSH's ProxyCommand). */
  proxyCommand?: string;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Dial attempts before giving up (connecting is the only thing ever retried). */
  dialAttempts?: number;
  /** Concurrent channels per connection; OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
  /** Deadlines per kind of command, and how long a dropped connection is dialled again. */
  deadlines?: Partial<Deadlines>;
}

/** Milliseconds. */
export interface Deadlines {
  read: number;
  change: number;
  pull: number;
  reconnect: number;
}
export const DEFAULT_DEADLINES: Deadlines = { read: 30_000, change: 120_000, pull: 600_000, reconnect: 60_000 };

type Bastion = Omit<SshConnectionConfig, "proxy" | "deadlines">;

export function toTarget(c: Bastion & { proxy?: Bastion; proxyCommand?: string; deadlines?: SshConnectionConfig["deadlines"] }): SshTarget {
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
    proxyCommand: c.proxyCommand,
    connectTimeoutMs: c.connectTimeout * 1000,
    keepaliveIntervalMs: c.keepaliveInterval * 1000,
    dialAttempts: c.dialAttempts,
    maxChannels: c.maxChannels,
    deadlines: c.deadlines && {
      read: c.deadlines.read * 1000,
      change: c.deadlines.change * 1000,
      pull: c.deadlines.pull * 1000,
      reconnect: c.deadlines.reconnect * 1000,
    },
  };
}


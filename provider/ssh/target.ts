/** A connection's config (seconds, as the schema has them) as the executor's target. */
import type { SshConnectionConfig } from "../config/schemas";
import type { SshTarget } from "./executor";

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


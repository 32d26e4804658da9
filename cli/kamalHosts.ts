/**
 * A Kamal project's hosts as its KamalApp reaches them: every host of deploy.yml's roles and
 * accessories, with deploy.yml's ssh settings (user, port, key, jump host, proxy command)
 * and what the stack adds (the hosts' keys, the key to log in with), as the provider's
 * connection config. `init` reads the hosts' keys through these connections; `bootstrap`
 * reaches the hosts with them before anything is deployed.
 */
import { connectionInput, type PlainSshArgs } from "../components/common";
import { kamalKeyData, kamalSsh } from "../components/kamal";
import { SecretText, type KamalConfig, type KeyData } from "../kamal/model";
import { SecretsFiles } from "../kamal/secrets";
import { sshConnection, type SshConnectionConfig } from "../provider/config/values";
import { HostKeyError } from "../provider/ssh/errors";
import { SshPool } from "../provider/ssh/pool";
import { knownHostsName, keyTypeOf } from "../provider/ssh/knownHosts";
import { toTarget } from "../provider/ssh/target";
import { UsageError } from "./usage";

export interface StackSsh {
  knownHosts?: string;
  privateKeyPath?: string;
  agent?: boolean;
}

/** Each distinct host, as deploy.yml names it (KamalApp's host names). */
export function kamalHostNames(cfg: KamalConfig): string[] {
  return [...new Set([...cfg.roles.flatMap((r) => r.hosts.map((h) => h.address)), ...cfg.accessories.flatMap((a) => a.hosts)])];
}

/** What a key_data entry holds: the named secret's value from the project's secrets files
 * (read on first use), or the key written out. */
export function keyDataIn(dir: string, cfg: KamalConfig): (k: KeyData) => string {
  let files: SecretsFiles | undefined;
  return (k) => {
    if (k instanceof SecretText) return k.reveal();
    files ??= new SecretsFiles({ appRoot: dir, kamal: cfg.kamal, destination: cfg.destination, secretsPath: cfg.secretsPath });
    try {
      return files.get(k.secret);
    } catch (e) {
      throw new UsageError(`ssh.key_data: ${(e as Error).message}`);
    }
  };
}

/** deploy.yml's ssh settings with what the stack adds, as plain connection settings. */
function sshSettings(cfg: KamalConfig, extra: StackSsh, keyData?: (k: KeyData) => string): PlainSshArgs {
  return { ...kamalSsh(cfg), ...(keyData ? kamalKeyData(cfg, keyData) : {}), ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined)) };
}

/** Each distinct host (as deploy.yml names it) with its connection. */
export function kamalConnections(cfg: KamalConfig, extra: StackSsh, keyData?: (k: KeyData) => string): { name: string; connection: SshConnectionConfig }[] {
  const names = kamalHostNames(cfg);
  const ssh = sshSettings(cfg, extra, keyData);
  return names.map((name) => {
    const parsed = sshConnection.safeParse(connectionInput(ssh, { address: cfg.ssh.hostNames[name] ?? name }));
    if (!parsed.success) throw new UsageError(`${name}: deploy.yml's ssh settings do not parse: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    return { name, connection: parsed.data };
  });
}

/** The remote builder's connection (deploy.yml's builder.remote), as the build reaches it. */
export function kamalBuilderConnection(cfg: KamalConfig, extra: StackSsh, keyData?: (k: KeyData) => string): { name: string; connection: SshConnectionConfig }[] {
  const remote = cfg.builder.remote;
  if (!remote) return [];
  const ssh = { ...sshSettings(cfg, extra, keyData), user: remote.user, ...(remote.port ? { port: remote.port } : {}) };
  const parsed = sshConnection.safeParse(connectionInput(ssh, { address: cfg.ssh.hostNames[remote.host] ?? remote.host }));
  return parsed.success ? [{ name: remote.host, connection: parsed.data }] : [];
}

export interface PresentedKey {
  host: string;
  port: number;
  key: Buffer;
  /** Presented by the jump host on the way, not by the host itself. */
  jumpHost: boolean;
}

/** known_hosts lines for keys. */
export function knownHostsLines(keys: readonly PresentedKey[]): string[] {
  return keys.map((k) => `${knownHostsName(k.host, k.port)} ${keyTypeOf(k.key)} ${k.key.toString("base64")}`);
}

/**
 * The key a host presents, read in the SSH handshake by the provider's own dialler, so
 * through the jump host or proxy command deploy.yml names: with no key recorded, the host
 * is refused before any login (its key is in the refusal). A jump host's key is read the
 * same way first; the jump host is then logged in to (with the user's key, never a
 * password) to reach the host, and its key is returned too, for the user to confirm.
 */
export async function presentedKeys(connection: SshConnectionConfig, known: readonly PresentedKey[] = []): Promise<PresentedKey[]> {
  const jump = connection.proxy;
  if (jump && !jump.privateKey && !jump.privateKeyPath && !jump.agent) {
    throw new Error(`the jump host ${jump.host} would be logged in to without a key (a password is never sent to a host whose key is not confirmed yet): give --ssh-key, or --known-hosts FILE`);
  }
  const found: PresentedKey[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const knownHosts = knownHostsLines([...known, ...found]).join("\n");
    const c = { ...connection, knownHosts, knownHostsPath: undefined, hostKey: undefined, dialAttempts: 1, connectTimeout: 10 };
    if (c.proxy) c.proxy = { ...c.proxy, knownHosts, knownHostsPath: undefined, hostKey: undefined };
    const pool = new SshPool();
    try {
      await pool.connect(toTarget(c as SshConnectionConfig));
      // Logged in: every key on the way was known already.
      return found;
    } catch (e) {
      const refusal = e instanceof HostKeyError ? e : undefined;
      if (!refusal?.presented || refusal.reason !== "unknown") throw e;
      const isTarget = refusal.host === connection.host && refusal.presented.port === connection.port;
      found.push({ host: refusal.host, port: refusal.presented.port, key: refusal.presented.key, jumpHost: !isTarget });
      if (isTarget) return found;
    } finally {
      pool.closeAll();
    }
  }
  throw new Error("no host key after three handshakes");
}

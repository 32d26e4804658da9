/**
 * The connections of one process: one per target (user@host:port, through its bastion or
 * proxy command), dialled on first use with the host key verified, then reused.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { Duplex } from "node:stream";
import { Client, type AgentAuthMethod, type ConnectConfig, type NoAuthMethod, type PasswordAuthMethod, type PublicKeyAuthMethod, type ServerHostKeyAlgorithm } from "ssh2";
import { HostKeyError, SshConnectError } from "./errors";
import { SshConnection, type HostStats, type Logger } from "./executor";
import { parseKnownHosts, verifyHostKey, type KnownHostEntry } from "./knownHosts";
import type { SshTarget } from "./target";

const RETRYABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|Timed out while waiting for handshake|Connection lost before handshake|Not connected/;

/** Host-key algorithms that can present a key of a known_hosts key type. */
function algorithmsFor(keyType: string): ServerHostKeyAlgorithm[] {
  return keyType === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [keyType as ServerHostKeyAlgorithm];
}

function targetKey(t: SshTarget): string {
  const self = `${t.user ?? "root"}@${t.host}:${t.port ?? 22}`;
  if (t.proxyCommand) return `${JSON.stringify(t.proxyCommand)}>${self}`;
  return t.proxy ? `${targetKey(t.proxy)}>${self}` : self;
}

/** Connections opened at once unless a target says otherwise (Kamal's max_concurrent_starts). */
export const MAX_CONCURRENT_STARTS = 30;

/** One connection per target per process, opened on first use and then reused. */
export class SshPool {
  private readonly connections = new Map<string, Promise<SshConnection>>();
  private readonly stats = new Map<string, HostStats>();
  /** Handshakes in flight, and those waiting for a turn. */
  private starting = 0;
  private readonly waiting: { limit: number; go: () => void }[] = [];

  constructor(
    private readonly log: Logger = () => {},
  ) {}

  /** Counters per host (user@host:port), for benchmarks and tests. */
  statsFor(target: SshTarget): HostStats {
    const key = targetKey(target);
    let s = this.stats.get(key);
    if (!s) {
      s = { connections: 0, commands: 0, uploads: 0, bytesSent: 0, bytesReceived: 0 };
      this.stats.set(key, s);
    }
    return s;
  }

  /** Counters of every host this pool has talked to, keyed user@host:port. */
  snapshot(): Record<string, HostStats> {
    return Object.fromEntries([...this.stats].map(([k, v]) => [k, { ...v }]));
  }

  async connect(target: SshTarget): Promise<SshConnection> {
    const key = targetKey(target);
    const existing = this.connections.get(key);
    if (existing) {
      // A connection that dropped dials again itself on its next command.
      const conn = await existing.catch(() => undefined);
      if (conn?.usable) return conn;
    }
    const pending = this.dial(target);
    this.connections.set(key, pending);
    pending.catch(() => this.connections.delete(key));
    return pending;
  }

  closeAll(): void {
    for (const p of this.connections.values()) p.then((c) => c.close(), () => {});
    this.connections.clear();
  }

  private async dial(target: SshTarget): Promise<SshConnection> {
    const attempts = Math.max(1, target.dialAttempts ?? 3);
    let last: Error = new Error("no attempt made");
    for (let i = 1; i <= attempts; i++) {
      try {
        return await this.dialOnce(target);
      } catch (e) {
        last = e as Error;
        if (e instanceof HostKeyError || !RETRYABLE.test(last.message) || i === attempts) break;
        const delay = 500 * 2 ** (i - 1);
        this.log(`ssh ${target.host}: connect attempt ${i}/${attempts} failed (${last.message}); retrying in ${delay}ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    if (last instanceof HostKeyError) throw last;
    throw new SshConnectError(target.host, attempts, last);
  }

  private async dialOnce(target: SshTarget): Promise<SshConnection> {
    const client = await this.dialClient(target);
    this.statsFor(target).connections++;
    const redial = async () => {
      const c = await this.dialClient(target);
      this.statsFor(target).connections++;
      return c;
    };
    return new SshConnection(client, target, this.statsFor(target), redial, this.log);
  }

  private async dialClient(target: SshTarget): Promise<Client> {
    const port = target.port ?? 22;
    const config: ConnectConfig = {
      host: target.host,
      port,
      username: target.user ?? "root",
      readyTimeout: target.connectTimeoutMs ?? 15_000,
      keepaliveInterval: target.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
    };
    // Every key given: the text first, then the files (Kamal's key_data and keys).
    const keys: (string | Buffer)[] = [
      ...(target.privateKey ? [target.privateKey] : []),
      ...(target.privateKeys ?? []),
      ...[...(target.privateKeyPath ? [target.privateKeyPath] : []), ...(target.privateKeyPaths ?? [])].map((p) => readFileSync(p)),
    ];
    if (keys.length) config.privateKey = keys[0];
    if (target.passphrase) config.passphrase = target.passphrase;
    if (target.password) config.password = target.password;
    if (target.agent) config.agent = target.agent === true ? process.env.SSH_AUTH_SOCK : target.agent;
    if (config.agent && target.forwardAgent) config.agentForward = true;
    if (keys.length > 1 || (target.keysOnly && config.agent)) {
      // ssh2's own order (none, password, the key, the agent), with every key given and,
      // with keysOnly, no agent identity.
      const username = config.username!;
      const methods: (NoAuthMethod | PasswordAuthMethod | PublicKeyAuthMethod | AgentAuthMethod)[] = [{ type: "none", username }];
      if (config.password) methods.push({ type: "password", username, password: config.password });
      for (const key of keys) methods.push({ type: "publickey", username, key, passphrase: config.passphrase });
      if (config.agent && !target.keysOnly) methods.push({ type: "agent", username, agent: config.agent });
      config.authHandler = methods;
    }

    let refusal: HostKeyError | undefined;
    if (!target.insecureIgnoreHostKey) {
      const entries = knownEntries(target);
      const types = [...new Set(entries.filter((e) => !e.revoked).map((e) => e.keyType))];
      // Ask only for key types we can verify, as OpenSSH does: otherwise the server may
      // present, say, its RSA key when only its ed25519 key is recorded.
      const applicable = types.length
        ? types
        : ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"];
      config.algorithms = { serverHostKey: applicable.flatMap(algorithmsFor) };
      config.hostVerifier = (key: Buffer) => {
        const verdict = verifyHostKey(entries, target.host, port, key);
        if (verdict.ok) return true;
        refusal = new HostKeyError(target.host, verdict.reason, verdict.presented, { key: Buffer.from(key), port });
        return false;
      };
    } else {
      this.log(`ssh ${target.host}: WARNING host key verification disabled (insecureIgnoreHostKey)`);
    }

    let proxyProcess: ChildProcess | undefined;
    let proxyStderr = "";
    let proxyClosed = false;
    if (target.proxyCommand) {
      // OpenSSH's tokens, then sh, on this machine: the command's stdio is the connection.
      const command = target.proxyCommand.replace(/%(.)/g, (m, c: string) =>
        c === "h" ? target.host : c === "p" ? String(port) : c === "r" ? (target.user ?? "root") : c === "%" ? "%" : m,
      );
      proxyProcess = spawn("sh", ["-c", command], { stdio: ["pipe", "pipe", "pipe"] });
      proxyProcess.stderr!.on("data", (d: Buffer) => (proxyStderr = (proxyStderr + d.toString()).slice(-2000)));
      proxyProcess.on("error", (e) => (proxyStderr += e.message));
      proxyProcess.on("close", () => (proxyClosed = true));
      const sock = Duplex.from({ readable: proxyProcess.stdout!, writable: proxyProcess.stdin! });
      // The command ending early surfaces as the connection's error, with its stderr.
      sock.on("error", () => undefined);
      config.sock = sock;
    } else if (target.proxy) {
      const bastion = await this.connect(target.proxy);
      config.sock = await bastion.forwardOut(target.host, port);
    }

    const client = new Client();
    // Each command in flight watches the connection's close (up to maxChannels of them).
    client.setMaxListeners(0);
    await this.startTurn(target.maxConcurrentStarts ?? MAX_CONCURRENT_STARTS);
    try {
      await new Promise<void>((resolve, reject) => {
        const onReady = () => {
          client.off("error", onError);
          resolve();
        };
        const onError = (err: Error) => {
          client.off("ready", onReady);
          // Later errors of this failed client (its socket closing) are not news.
          client.on("error", () => undefined);
          const finish = () => {
            proxyProcess?.kill();
            const why = proxyStderr.trim() ? ` (proxy command: ${proxyStderr.trim().split("\n").slice(-3).join(" / ")})` : "";
            reject(refusal ?? (why ? Object.assign(new Error(`${err.message}${why}`), { code: (err as { code?: string }).code }) : err));
          };
          // A proxy command that failed has usually said why on stderr: read it to the end first.
          if (proxyProcess && !proxyClosed) {
            const wait = setTimeout(finish, 500);
            proxyProcess.once("close", () => (clearTimeout(wait), finish()));
          } else finish();
        };
        client.once("ready", onReady);
        client.once("error", onError);
        client.connect(config);
      });
    } finally {
      this.endTurn();
    }
    // A connection that drops later is dialled again by its SshConnection; its errors must
    // not crash the process.
    client.on("error", (err) => this.log(`ssh ${target.host}: connection error: ${err.message}`));
    if (proxyProcess) client.on("close", () => proxyProcess!.kill());
    return client;
  }

  /** Waits until fewer than `limit` handshakes are in flight, then takes a place. */
  private startTurn(limit: number): Promise<void> {
    if (this.starting < limit) {
      this.starting++;
      return Promise.resolve();
    }
    return new Promise((go) => this.waiting.push({ limit, go }));
  }

  private endTurn(): void {
    const next = this.waiting.findIndex((w) => this.starting - 1 < w.limit);
    if (next < 0) {
      this.starting--;
      return;
    }
    // The place passes to the next in line (the count stays).
    this.waiting.splice(next, 1)[0].go();
  }
}

function knownEntries(target: SshTarget): KnownHostEntry[] {
  let text = "";
  if (target.knownHosts) text += target.knownHosts + "\n";
  if (target.knownHostsPath) text += readFileSync(target.knownHostsPath, "utf8") + "\n";
  if (target.hostKey) {
    const port = target.port ?? 22;
    const name = port === 22 ? target.host : `[${target.host}]:${port}`;
    text += `${name} ${target.hostKey.trim()}\n`;
  }
  return parseKnownHosts(text);
}

/**
 * SSH executor: one connection per host per process, shared by every command for that
 * host over concurrent channels. Knows nothing about Docker.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import type { Socket } from "node:net";
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from "ssh2";
import { parseKnownHosts, verifyHostKey, type KnownHostEntry } from "./knownHosts";
import { redact, tail } from "./redact";

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
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Dial attempts before giving up (connecting is the only thing ever retried). */
  dialAttempts?: number;
  /** Concurrent channels per connection; OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
}

export interface ExecOptions {
  /** Written to the command's stdin, then closed: how secrets reach a command. */
  stdin?: string | Buffer;
  /** Values to replace with [REDACTED] in errors and logs. */
  secrets?: Iterable<string>;
  /** Called with each complete line of stdout/stderr as it arrives. */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface HostStats {
  connections: number;
  commands: number;
  uploads: number;
  bytesSent: number;
  bytesReceived: number;
}

export type Logger = (message: string) => void;

export class SshConnectError extends Error {
  constructor(readonly host: string, readonly attempts: number, readonly cause: Error) {
    super(`ssh ${host}: could not connect after ${attempts} attempt(s): ${cause.message}`);
    this.name = "SshConnectError";
  }
}

export class HostKeyError extends Error {
  constructor(
    readonly host: string,
    readonly reason: "unknown" | "mismatch" | "revoked",
    readonly fingerprint: string,
  ) {
    const what = {
      unknown: "is not in known_hosts",
      mismatch: "does NOT match the key recorded in known_hosts (possible man-in-the-middle)",
      revoked: "is marked @revoked in known_hosts",
    }[reason];
    super(
      `ssh ${host}: host key ${fingerprint} ${what}; connection refused. ` +
        `Add the host's key to known_hosts (ssh-keyscan, verified out of band) or pin it with hostKey.`,
    );
    this.name = "HostKeyError";
  }
}

export class RemoteCommandError extends Error {
  constructor(
    readonly host: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly signal: string | undefined,
    readonly stderrTail: string,
    readonly stdoutTail: string,
  ) {
    const status = exitCode === null ? `signal ${signal ?? "unknown"}` : `exit code ${exitCode}`;
    super(
      `ssh ${host}: command failed with ${status}: ${command}` +
        (stderrTail ? `\n--- stderr (tail) ---\n${stderrTail}` : ""),
    );
    this.name = "RemoteCommandError";
  }
}

const RETRYABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|Timed out while waiting for handshake|Connection lost before handshake|Not connected/;

/** Host-key algorithms that can present a key of a known_hosts key type. */
function algorithmsFor(keyType: string): string[] {
  return keyType === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [keyType];
}

function targetKey(t: SshTarget): string {
  const self = `${t.user ?? "root"}@${t.host}:${t.port ?? 22}`;
  return t.proxy ? `${targetKey(t.proxy)}>${self}` : self;
}

/** A counting semaphore that bounds concurrent channels on one connection. */
class Slots {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** An open SSH connection to one host. */
export class SshConnection {
  readonly name: string;
  private readonly slots: Slots;
  private closed = false;

  constructor(
    private readonly client: Client,
    readonly target: SshTarget,
    private readonly stats: HostStats,
  ) {
    this.name = target.host;
    this.slots = new Slots(target.maxChannels ?? 8);
    client.on("close", () => (this.closed = true));
    client.on("end", () => (this.closed = true));
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Runs a command; resolves on exit code 0, rejects with RemoteCommandError otherwise. */
  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.run(command, opts);
    if (result.code !== 0) {
      const secrets = [...(opts.secrets ?? [])];
      throw new RemoteCommandError(
        this.name,
        redact(command, secrets),
        result.signal ? null : result.code,
        result.signal,
        redact(tail(result.stderr), secrets),
        redact(tail(result.stdout), secrets),
      );
    }
    return { stdout: result.stdout, stderr: result.stderr, code: 0 };
  }

  /** Runs a command and returns its outcome whatever the exit code. */
  async run(command: string, opts: ExecOptions = {}): Promise<ExecResult & { signal?: string }> {
    await this.slots.acquire();
    try {
      this.stats.commands++;
      const stream = await this.openChannel(command);
      return await this.collect(stream, opts);
    } finally {
      this.slots.release();
    }
  }

  /**
   * Opens a channel for the command. A refused channel open (the server's session limit,
   * briefly reached while closed channels are still being torn down) is retried: the
   * command has not started yet, so this is as safe as retrying a connect.
   */
  private async openChannel(command: string): Promise<ClientChannel> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await new Promise<ClientChannel>((resolve, reject) =>
          this.client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))),
        );
      } catch (e) {
        if (!/Channel open failure/.test((e as Error).message) || attempt >= 6) throw e;
        await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
      }
    }
  }

  private collect(stream: ClientChannel, opts: ExecOptions) {
    return new Promise<ExecResult & { signal?: string }>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const partial = { stdout: "", stderr: "" };
      const feed = (which: "stdout" | "stderr", chunk: Buffer) => {
        this.stats.bytesReceived += chunk.length;
        (which === "stdout" ? out : err).push(chunk);
        if (!opts.onLine) return;
        const lines = (partial[which] + chunk.toString("utf8")).split("\n");
        partial[which] = lines.pop() ?? "";
        for (const l of lines) opts.onLine(which, redact(l, opts.secrets));
      };
      const onOut = (c: Buffer) => feed("stdout", c);
      const onErr = (c: Buffer) => feed("stderr", c);
      let timer: NodeJS.Timeout | undefined;
      const detach = () => {
        stream.off("data", onOut);
        stream.stderr.off("data", onErr);
        if (timer) clearTimeout(timer);
      };
      stream.on("data", onOut);
      stream.stderr.on("data", onErr);
      stream.once("error", (e: Error) => {
        detach();
        reject(e);
      });
      stream.once("close", (code: number | null, signal?: string) => {
        detach();
        if (opts.onLine) {
          for (const which of ["stdout", "stderr"] as const) {
            if (partial[which]) opts.onLine(which, redact(partial[which], opts.secrets));
          }
        }
        resolve({
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
          code: code ?? -1,
          signal: signal ?? undefined,
        });
      });
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          stream.signal?.("KILL");
          stream.close();
        }, opts.timeoutMs);
      }
      if (opts.stdin !== undefined) {
        const data = typeof opts.stdin === "string" ? Buffer.from(opts.stdin) : opts.stdin;
        this.stats.bytesSent += data.length;
        stream.end(data);
      } else {
        stream.end();
      }
    });
  }

  /** Writes a file atomically over SFTP (temp file, chmod, rename) with the given mode. */
  async upload(remotePath: string, content: string | Buffer, mode = 0o600): Promise<void> {
    await this.slots.acquire();
    try {
      this.stats.uploads++;
      const data = typeof content === "string" ? Buffer.from(content) : content;
      this.stats.bytesSent += data.length;
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
        this.client.sftp((err, s) => (err ? reject(err) : resolve(s))),
      );
      try {
        const tmp = `${remotePath}.tmp-${process.pid}-${Date.now()}`;
        await new Promise<void>((resolve, reject) =>
          sftp.writeFile(tmp, data, { mode }, (e) => (e ? reject(e) : resolve())),
        );
        await new Promise<void>((resolve, reject) => sftp.chmod(tmp, mode, (e) => (e ? reject(e) : resolve())));
        await new Promise<void>((resolve, reject) =>
          sftp.ext_openssh_rename(tmp, remotePath, (e) => (e ? reject(e) : resolve())),
        );
      } catch (e) {
        throw new Error(`ssh ${this.name}: upload to ${remotePath} failed: ${(e as Error).message}`);
      } finally {
        sftp.end();
      }
    } finally {
      this.slots.release();
    }
  }

  close(): void {
    this.closed = true;
    this.client.end();
  }

  /**
   * An HTTP GET to an address as seen from the host (a container's IP, the host's
   * loopback), through an SSH direct-tcpip channel: no curl needed on the host. Resolves
   * with the status and body; rejects on a refused channel, a socket error or the timeout.
   */
  async httpGet(host: string, port: number, path: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
    await this.slots.acquire();
    try {
      this.stats.commands++;
      const channel = await Promise.race([
        this.forwardOut(host, port),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`ssh ${this.name}: no channel to ${host}:${port} within ${timeoutMs}ms`)), timeoutMs)),
      ]);
      return await new Promise((resolve, reject) => {
        const req = http.request(
          { host, port, path, method: "GET", createConnection: () => channel as unknown as Socket, headers: { connection: "close" }, timeout: timeoutMs },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => {
              this.stats.bytesReceived += c.length;
              chunks.push(c);
            });
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
            res.on("error", reject);
          },
        );
        req.on("timeout", () => req.destroy(new Error(`GET http://${host}:${port}${path} timed out after ${timeoutMs}ms`)));
        req.on("error", (e) => {
          channel.close();
          reject(e);
        });
        req.end();
      });
    } finally {
      this.slots.release();
    }
  }

  /** The underlying client, for tunnelling through this host as a bastion. */
  forwardOut(host: string, port: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) =>
      this.client.forwardOut("127.0.0.1", 0, host, port, (err, ch) => (err ? reject(err) : resolve(ch))),
    );
  }
}

/** One connection per target per process, opened on first use and then reused. */
export class SshPool {
  private readonly connections = new Map<string, Promise<SshConnection>>();
  private readonly stats = new Map<string, HostStats>();

  constructor(private readonly log: Logger = () => {}) {}

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
      const conn = await existing.catch(() => undefined);
      if (conn?.isOpen) return conn;
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
    const port = target.port ?? 22;
    const config: ConnectConfig = {
      host: target.host,
      port,
      username: target.user ?? "root",
      readyTimeout: target.connectTimeoutMs ?? 15_000,
      keepaliveInterval: target.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
    };
    if (target.privateKey) config.privateKey = target.privateKey;
    else if (target.privateKeyPath) config.privateKey = readFileSync(target.privateKeyPath);
    if (target.passphrase) config.passphrase = target.passphrase;
    if (target.password) config.password = target.password;
    if (target.agent) config.agent = target.agent === true ? process.env.SSH_AUTH_SOCK : target.agent;

    let refusal: HostKeyError | undefined;
    if (!target.insecureIgnoreHostKey) {
      const entries = knownEntries(target);
      const types = [...new Set(entries.filter((e) => !e.revoked).map((e) => e.keyType))];
      // Ask only for key types we can verify, as OpenSSH does: otherwise the server may
      // present, say, its RSA key when only its ed25519 key is recorded.
      const applicable = types.length
        ? types
        : ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"];
      config.algorithms = { serverHostKey: applicable.flatMap(algorithmsFor) as never };
      config.hostVerifier = (key: Buffer) => {
        const verdict = verifyHostKey(entries, target.host, port, key);
        if (verdict.ok) return true;
        refusal = new HostKeyError(target.host, verdict.reason, verdict.presented);
        return false;
      };
    } else {
      this.log(`ssh ${target.host}: WARNING host key verification disabled (insecureIgnoreHostKey)`);
    }

    if (target.proxy) {
      const bastion = await this.connect(target.proxy);
      config.sock = await bastion.forwardOut(target.host, port);
    }

    const client = new Client();
    const stats = this.statsFor(target);
    await new Promise<void>((resolve, reject) => {
      const onReady = () => {
        client.off("error", onError);
        resolve();
      };
      const onError = (err: Error) => {
        client.off("ready", onReady);
        reject(refusal ?? err);
      };
      client.once("ready", onReady);
      client.once("error", onError);
      client.connect(config);
    });
    // A connection that drops later is replaced on the next connect(); its errors must
    // not crash the process.
    client.on("error", (err) => this.log(`ssh ${target.host}: connection error: ${err.message}`));
    stats.connections++;
    return new SshConnection(client, target, stats);
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


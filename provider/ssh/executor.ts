/**
 * SSH executor: one connection per host per process, shared by every command for that
 * host over concurrent channels. Knows nothing about Docker.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { Duplex } from "node:stream";
import http from "node:http";
import tls from "node:tls";
import type { Socket } from "node:net";
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from "ssh2";
import { parseKnownHosts, verifyHostKey, type KnownHostEntry } from "./knownHosts";
import type { CommandPolicy } from "../commands/shell";
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

/** What the executor may do with a command (decided by the layer that builds commands). */
export type PolicyOf = (command: string) => CommandPolicy;
const UNKNOWN_COMMAND: CommandPolicy = { repeatable: false, deadline: "change", extraSeconds: 0 };

export interface ExecOptions {
  /** Written to the command's stdin, then closed: how secrets reach a command. */
  stdin?: string | Buffer;
  /** Values to replace with [REDACTED] in errors and logs. */
  secrets?: Iterable<string>;
  /** Called with each complete line of stdout/stderr as it arrives. */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
  /** Overrides the deadline the command's policy gives. */
  timeoutMs?: number;
  /** Overrides whether the command may run again after a dropped connection. */
  repeatable?: boolean;
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
    /** The key the host presented, and the port it was dialled on (what `init` shows the
     * user to confirm; a public key, never secret). */
    readonly presented?: { key: Buffer; port: number },
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

/** What a failure says about a host that is not ready for deploys, and what fixes it. */
const NOT_READY: [RegExp, string][] = [
  [/\bdocker: (command )?not found/, "Docker is not installed on this host (or not on the SSH user's PATH): pulumi-kamal bootstrap installs it"],
  [/permission denied while trying to connect to the Docker daemon socket/, "the SSH user may not use the Docker engine: pulumi-kamal bootstrap adds it to the docker group"],
];

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
    const hint = NOT_READY.find(([re]) => re.test(stderrTail))?.[1];
    super(
      `ssh ${host}: command failed with ${status}: ${command}` +
        (stderrTail ? `\n--- stderr (tail) ---\n${stderrTail}` : "") +
        (hint ? `\n(${hint})` : ""),
    );
    this.name = "RemoteCommandError";
  }
}

/** A command did not finish within its deadline while the connection stayed up (a wedged
 * dockerd, a stuck pull). */
export class DeadlineError extends Error {
  constructor(readonly host: string, readonly command: string, readonly ms: number) {
    super(`ssh ${host}: no answer within ${Math.round(ms / 1000)}s (the connection is up; is the Docker engine answering?): ${command}`);
    this.name = "DeadlineError";
  }
}

/** The service a command needs (dockerd) did not answer within the reconnect window: the
 * command did nothing. Not an answer such as "no such container": a caller reading the host
 * must not take it for one. */
export class EngineDownError extends Error {
  constructor(readonly host: string, readonly command: string, detail: string, ms: number) {
    super(`ssh ${host}: the Docker engine did not answer for ${Math.round(ms / 1000)}s (${detail}): is it running? (pulumi-kamal bootstrap starts it): ${command}`);
    this.name = "EngineDownError";
  }
}

/** The connection dropped and did not come back within the reconnect window, or dropped
 * while a command that must not run twice was in flight (`mayHaveRun`: the caller re-reads
 * the host to learn whether it did). */
export class ConnectionLostError extends Error {
  constructor(readonly host: string, readonly command: string, readonly mayHaveRun: boolean, detail: string) {
    super(`ssh ${host}: connection lost ${detail}: ${command}`);
    this.name = "ConnectionLostError";
  }
}

/** Internal: the channel ended because the connection went away. */
class Dropped extends Error {
  constructor(readonly started: boolean, cause: string) {
    super(cause);
  }
}

const RETRYABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|Timed out while waiting for handshake|Connection lost before handshake|Not connected/;

/** Host-key algorithms that can present a key of a known_hosts key type. */
function algorithmsFor(keyType: string): string[] {
  return keyType === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [keyType];
}

function targetKey(t: SshTarget): string {
  const self = `${t.user ?? "root"}@${t.host}:${t.port ?? 22}`;
  if (t.proxyCommand) return `${JSON.stringify(t.proxyCommand)}>${self}`;
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

/**
 * The SSH connection to one host. When the connection drops (a network cut, sshd restarted)
 * it is dialled again, host key verified again, for up to the reconnect window: commands
 * that had not started, reads and repeatable changes then carry on; a command that must not
 * run twice and may have run fails with ConnectionLostError (mayHaveRun) so that its caller
 * re-reads the host. Every command has a deadline (its policy's kind, or timeoutMs).
 */
export class SshConnection {
  readonly name: string;
  private readonly slots: Slots;
  private client: Client;
  private closed = false;
  private intentionallyClosed = false;
  private reconnecting?: Promise<void>;
  private readonly deadlines: Deadlines;
  /** Milliseconds spent dialling again after drops, in total (see stopwatch). */
  private outageMs = 0;

  constructor(
    client: Client,
    readonly target: SshTarget,
    private readonly stats: HostStats,
    private readonly dial: () => Promise<Client> = () => Promise.reject(new Error("no dialer")),
    private readonly policyOf: PolicyOf = () => UNKNOWN_COMMAND,
    private readonly log: Logger = () => {},
  ) {
    this.name = target.host;
    this.slots = new Slots(target.maxChannels ?? 8);
    this.deadlines = { ...DEFAULT_DEADLINES, ...target.deadlines };
    this.client = client;
    this.watch(client);
  }

  private watch(client: Client): void {
    const down = () => {
      if (this.client === client) this.closed = true;
    };
    client.on("close", down);
    client.on("end", down);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Whether this connection can still be used (open, or dialled again on the next command). */
  get usable(): boolean {
    return !this.intentionallyClosed;
  }

  /** A clock for pollers: milliseconds since now, less the time spent dialling again after
   * drops (an outage is not the container's fault, nor Traefik's). */
  stopwatch(): () => number {
    const t0 = Date.now();
    const outage0 = this.outageMs;
    return () => Date.now() - t0 - (this.outageMs - outage0);
  }

  /**
   * Resolves once the connection is open, dialling again if it dropped (one dial shared by
   * every waiting command), within the reconnect window; resolves with the milliseconds
   * spent waiting, so that pollers do not count an outage against their own deadline.
   */
  async ready(what = "reconnecting"): Promise<number> {
    if (!this.closed) return 0;
    if (this.intentionallyClosed) throw new ConnectionLostError(this.name, what, false, "(closed)");
    const t0 = Date.now();
    this.reconnecting ??= this.reconnect().finally(() => (this.reconnecting = undefined));
    try {
      await this.reconnecting;
    } catch (e) {
      throw new ConnectionLostError(this.name, what, false, `and not back within ${this.deadlines.reconnect / 1000}s (${(e as Error).message})`);
    }
    return Date.now() - t0;
  }

  private async reconnect(): Promise<void> {
    const t0 = Date.now();
    try {
      await this.redialWithin(t0);
    } finally {
      this.outageMs += Date.now() - t0;
    }
  }

  private async redialWithin(t0: number): Promise<void> {
    this.log(`ssh ${this.name}: connection lost; dialling again for up to ${this.deadlines.reconnect / 1000}s`);
    let last: Error = new Error("no attempt made");
    for (let attempt = 1; Date.now() - t0 < this.deadlines.reconnect; attempt++) {
      try {
        const client = await this.dial();
        this.client = client;
        this.watch(client);
        this.closed = false;
        this.log(`ssh ${this.name}: connected again after ${((Date.now() - t0) / 1000).toFixed(1)}s`);
        return;
      } catch (e) {
        last = e as Error;
        if (e instanceof HostKeyError) throw e;
        await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 3000)));
      }
    }
    throw last;
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
    const policy = this.policyOf(command);
    const repeatable = opts.repeatable ?? policy.repeatable;
    const timeoutMs = opts.timeoutMs ?? this.deadlines[policy.deadline] + policy.extraSeconds * 1000;
    const shown = redact(command, opts.secrets);
    let firstLoss: number | undefined;
    let notReachedSince: number | undefined;
    let toldNotReached = false;
    for (;;) {
      await this.ready(shown);
      try {
        const result = await this.attempt(command, opts, timeoutMs);
        if (result.code !== 0 && policy.notReached?.test(result.stderr)) {
          // The service behind the command (dockerd) is restarting: nothing happened yet.
          notReachedSince ??= Date.now();
          if (Date.now() - notReachedSince < this.deadlines.reconnect) {
            if (!toldNotReached) this.log(`ssh ${this.name}: ${tail(result.stderr, 1).trim()}; waiting up to ${this.deadlines.reconnect / 1000}s for it`);
            toldNotReached = true;
            await new Promise((r) => setTimeout(r, 1000));
            continue;
          }
          throw new EngineDownError(this.name, shown, tail(result.stderr, 1).trim(), Date.now() - notReachedSince);
        }
        if (notReachedSince !== undefined && result.code === 0) this.log(`ssh ${this.name}: answering again after ${((Date.now() - notReachedSince) / 1000).toFixed(1)}s`);
        return result;
      } catch (e) {
        if (e instanceof Dropped) {
          if (e.started && !repeatable) throw new ConnectionLostError(this.name, shown, true, "while the command ran; it may or may not have taken effect");
        } else if (e instanceof DeadlineError) {
          // Past its deadline: is it the connection (drop it, dial again) or the command?
          if (await this.alive()) throw new DeadlineError(this.name, shown, timeoutMs);
          this.client.end();
          this.closed = true;
          if (!repeatable) throw new ConnectionLostError(this.name, shown, true, `(no answer within ${Math.round(timeoutMs / 1000)}s); the command may or may not have taken effect`);
        } else {
          throw e;
        }
        firstLoss ??= Date.now();
        if (Date.now() - firstLoss > 2 * this.deadlines.reconnect) {
          throw new ConnectionLostError(this.name, shown, false, "again and again");
        }
      }
    }
  }

  /** Whether the connection answers a trivial command within 5 s. */
  private async alive(): Promise<boolean> {
    if (this.closed) return false;
    try {
      const r = await this.attempt("true", {}, 5000);
      return r.code === 0;
    } catch {
      return false;
    }
  }

  private async attempt(command: string, opts: ExecOptions, timeoutMs: number): Promise<ExecResult & { signal?: string }> {
    await this.slots.acquire();
    try {
      this.stats.commands++;
      let stream: ClientChannel;
      try {
        stream = await this.openChannel(command);
      } catch (e) {
        if (this.closed || /Not connected|No response from server|socket/i.test((e as Error).message)) {
          this.closed = true;
          throw new Dropped(false, (e as Error).message);
        }
        throw new Error(`ssh ${this.name}: could not start the command (${(e as Error).message}): ${redact(command, opts.secrets)}`);
      }
      return await this.collect(stream, opts, timeoutMs, redact(command, opts.secrets));
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

  private collect(stream: ClientChannel, opts: ExecOptions, timeoutMs: number, shown: string) {
    const client = this.client;
    return new Promise<ExecResult & { signal?: string }>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const partial = { stdout: "", stderr: "" };
      let settled = false;
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
      let exit: { code?: number | null; signal?: string } | undefined;
      const onExit = (code: number | null, signal?: string) => (exit = { code, signal });
      const onClientClose = () => finish(() => reject(new Dropped(true, "connection closed")));
      let timer: NodeJS.Timeout | undefined;
      const finish = (then: () => void) => {
        if (settled) return;
        settled = true;
        stream.off("data", onOut);
        stream.stderr.off("data", onErr);
        client.off("close", onClientClose);
        if (timer) clearTimeout(timer);
        then();
      };
      stream.on("data", onOut);
      stream.stderr.on("data", onErr);
      stream.on("exit", onExit);
      client.once("close", onClientClose);
      stream.once("error", (e: Error) => finish(() => reject(this.closed ? new Dropped(true, e.message) : e)));
      stream.once("close", (code: number | null | undefined, signal?: string) =>
        finish(() => {
          const status = exit ?? (code === undefined || code === null ? undefined : { code, signal });
          // A channel that closes with no exit status while the connection went away: the
          // command's fate is unknown.
          if (!status && (this.closed || client !== this.client)) return reject(new Dropped(true, "connection closed"));
          if (opts.onLine) {
            for (const which of ["stdout", "stderr"] as const) {
              if (partial[which]) opts.onLine(which, redact(partial[which], opts.secrets));
            }
          }
          resolve({
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
            code: status?.code ?? -1,
            signal: status?.signal ?? undefined,
          });
        }),
      );
      timer = setTimeout(() => {
        finish(() => reject(new DeadlineError(this.name, shown, timeoutMs)));
        try {
          stream.signal?.("KILL");
          stream.close();
        } catch {
          /* the channel is already gone */
        }
      }, timeoutMs);
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
    // A temporary file and a rename: repeating it after a dropped connection is safe.
    for (let attempt = 1; ; attempt++) {
      await this.ready(`upload to ${remotePath}`);
      try {
        return await this.uploadOnce(remotePath, content, mode);
      } catch (e) {
        if (!this.closed || attempt >= 3) throw e;
      }
    }
  }

  private async uploadOnce(remotePath: string, content: string | Buffer, mode: number): Promise<void> {
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
    this.intentionallyClosed = true;
    this.client.end();
  }

  /**
   * An HTTP GET to an address as seen from the host (a container's IP, the host's
   * loopback), through an SSH direct-tcpip channel: no curl needed on the host. Resolves
   * with the status and body; rejects on a refused channel, a socket error or the timeout.
   */
  async httpGet(host: string, port: number, path: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
    await this.ready(`GET http://${host}:${port}${path}`);
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
        // The whole exchange is bounded: a channel is no socket, so http's idle timeout may
        // never fire on it (a health check slower than its timeout must fail).
        // Destroyed for its timeout, the request may report the closed channel ("socket hang
        // up") rather than the reason: the reason is what the caller gets.
        const timedOut = new Error(`GET http://${host}:${port}${path} timed out after ${timeoutMs}ms`);
        let late = false;
        const expire = () => ((late = true), req.destroy(timedOut));
        const timer = setTimeout(expire, timeoutMs);
        req.on("close", () => clearTimeout(timer));
        req.on("timeout", expire);
        req.on("error", (e) => {
          clearTimeout(timer);
          channel.close();
          reject(late ? timedOut : e);
        });
        req.end();
      });
    } finally {
      this.slots.release();
    }
  }

  /**
   * The certificate a TLS server at an address as seen from the host presents for a name
   * (SNI), through an SSH channel; not verified (what is asked is which one it serves).
   * Undefined when nothing there completes a TLS handshake within the timeout.
   */
  async tlsPeer(host: string, port: number, servername: string, timeoutMs = 2000): Promise<{ subject: string; fingerprint: string } | undefined> {
    await this.ready(`TLS ${host}:${port}`);
    await this.slots.acquire();
    try {
      this.stats.commands++;
      const channel = await Promise.race([
        this.forwardOut(host, port),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no channel")), timeoutMs)),
      ]).catch(() => undefined);
      if (!channel) return undefined;
      return await new Promise((resolve) => {
        const socket = tls.connect({ socket: channel as unknown as Duplex, servername, rejectUnauthorized: false });
        const done = (v: { subject: string; fingerprint: string } | undefined) => {
          clearTimeout(timer);
          socket.destroy();
          channel.close();
          resolve(v);
        };
        const timer = setTimeout(() => done(undefined), timeoutMs);
        socket.on("secureConnect", () => {
          const c = socket.getPeerCertificate();
          done(c && c.fingerprint256 ? { subject: String(c.subject?.CN ?? ""), fingerprint: c.fingerprint256 } : undefined);
        });
        socket.on("error", () => done(undefined));
      });
    } finally {
      this.slots.release();
    }
  }

  /**
   * A command whose output is passed through as it comes, for as long as it runs: no
   * deadline, no retry after a drop, nothing kept in memory (`logs -f`, a console). With
   * `pty`, the remote side gets a terminal (its stdout and stderr arrive as one stream) and
   * `input` is its keyboard; a closed `signal` ends the command (the channel closes, and with
   * a terminal the remote process gets SIGHUP).
   */
  async session(
    command: string,
    opts: {
      pty?: { rows: number; cols: number; term?: string };
      input?: NodeJS.ReadableStream;
      onStdout: (chunk: Buffer) => void;
      onStderr?: (chunk: Buffer) => void;
      signal?: AbortSignal;
    },
  ): Promise<{ code: number; signal?: string }> {
    await this.ready(command);
    this.stats.commands++;
    const stream = await new Promise<ClientChannel>((resolve, reject) => {
      const done = (err: Error | undefined, ch: ClientChannel) => (err ? reject(new Error(`ssh ${this.name}: could not start the command (${err.message})`)) : resolve(ch));
      if (opts.pty) this.client.exec(command, { pty: { rows: opts.pty.rows, cols: opts.pty.cols, term: opts.pty.term ?? "xterm-256color" } }, done);
      else this.client.exec(command, done);
    });
    return new Promise((resolve, reject) => {
      let exit: { code: number; signal?: string } | undefined;
      // Ended from this side: the channel closes (sshd then closes the command's terminal,
      // which hangs it up, or its pipes) and the session is over now, whatever the remote
      // side still does.
      const onAbort = () => {
        try {
          stream.signal?.("INT");
          stream.close();
        } catch {
          /* already gone */
        }
        opts.input?.off("data", onInput);
        resolve({ code: 130, signal: "INT" });
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const onData = (c: Buffer) => {
        this.stats.bytesReceived += c.length;
        opts.onStdout(c);
      };
      const onInput = (c: Buffer | string) => stream.write(c);
      stream.on("data", onData);
      stream.stderr.on("data", (c: Buffer) => (opts.onStderr ?? opts.onStdout)(c));
      stream.on("exit", (code: number | null, signal?: string) => (exit = { code: code ?? (signal ? 128 : -1), signal: signal ?? undefined }));
      if (opts.input) {
        opts.input.on("data", onInput);
        opts.input.once("end", () => stream.end());
      } else {
        stream.end();
      }
      stream.once("error", reject);
      stream.once("close", () => {
        opts.input?.off("data", onInput);
        opts.signal?.removeEventListener("abort", onAbort);
        if (exit) resolve(exit);
        else if (opts.signal?.aborted) resolve({ code: 130, signal: "INT" });
        else reject(new ConnectionLostError(this.name, command, true, "while the command ran"));
      });
    });
  }

  /** The open client (dialled again first if it dropped), for tunnels (tunnel.ts). */
  async tunnelClient(): Promise<Client> {
    await this.ready("opening a tunnel");
    return this.client;
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

  constructor(
    private readonly log: Logger = () => {},
    /** Tells the connections which commands may run again and which deadline applies. */
    private readonly policyOf?: PolicyOf,
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
    return new SshConnection(client, target, this.statsFor(target), redial, this.policyOf, this.log);
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
      config.sock = sock as never;
    } else if (target.proxy) {
      const bastion = await this.connect(target.proxy);
      config.sock = await bastion.forwardOut(target.host, port);
    }

    const client = new Client();
    // Each command in flight watches the connection's close (up to maxChannels of them).
    client.setMaxListeners(0);
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
    // A connection that drops later is dialled again by its SshConnection; its errors must
    // not crash the process.
    client.on("error", (err) => this.log(`ssh ${target.host}: connection error: ${err.message}`));
    if (proxyProcess) client.on("close", () => proxyProcess!.kill());
    return client;
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


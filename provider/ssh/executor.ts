/**
 * SSH executor: one connection per host per process, shared by every command for that
 * host over concurrent channels. Knows nothing about Docker.
 */
import type { Client, ClientChannel, ExecOptions as ChannelOptions, SFTPWrapper } from "ssh2";
import type { Command } from "../commands/command";
import { followSession, httpOverChannel, tlsPeerOverChannel, type SessionOptions } from "./channels";
import { ConnectionLostError, DeadlineError, Dropped, EngineDownError, HostKeyError, RemoteCommandError } from "./errors";
import { redact, tail } from "./redact";
import { DEFAULT_DEADLINES, type Deadlines, type SshTarget } from "./target";


export interface ExecOptions {
  /** Written to the command's stdin, then closed: how secrets reach a command. */
  stdin?: string | Buffer;
  /** Values to replace with [REDACTED] in errors and logs. */
  secrets?: Iterable<string>;
  /** Called with each complete line of stdout/stderr as it arrives. */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
  /** Overrides the deadline the command's policy gives. */
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
  async exec(command: Command, opts: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.run(command, opts);
    if (result.code !== 0) {
      const secrets = [...(opts.secrets ?? [])];
      throw new RemoteCommandError(
        this.name,
        redact(command.text, secrets),
        result.signal ? null : result.code,
        result.signal,
        redact(tail(result.stderr), secrets),
        redact(tail(result.stdout), secrets),
      );
    }
    return { stdout: result.stdout, stderr: result.stderr, code: 0 };
  }

  /** Runs a command and returns its outcome whatever the exit code; what it may do after a
   * drop or past its deadline is the command's own policy. */
  async run(command: Command, opts: ExecOptions = {}): Promise<ExecResult & { signal?: string }> {
    const policy = command.policy;
    const repeatable = policy.repeatable;
    const timeoutMs = opts.timeoutMs ?? this.deadlines[policy.deadline] + policy.extraSeconds * 1000;
    const shown = redact(command.text, opts.secrets);
    let firstLoss: number | undefined;
    let notReachedSince: number | undefined;
    let toldNotReached = false;
    for (;;) {
      await this.ready(shown);
      try {
        const result = await this.attempt(command.text, opts, timeoutMs);
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
  /** The local agent forwarded to the command, when asked (forwardAgent) and there is one
   * (ssh2 takes `agentForward` on exec; its type declarations lack it). */
  private execOptions(): ChannelOptions & { agentForward?: boolean } {
    return this.target.forwardAgent && this.target.agent ? { agentForward: true } : {};
  }

  private async openChannel(command: string): Promise<ClientChannel> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await new Promise<ClientChannel>((resolve, reject) =>
          this.client.exec(command, this.execOptions(), (err, ch) => (err ? reject(err) : resolve(ch))),
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
      return await httpOverChannel(channel, host, port, path, timeoutMs, (n) => (this.stats.bytesReceived += n));
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
      return await tlsPeerOverChannel(channel, servername, timeoutMs);
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
  async session(command: Command, opts: SessionOptions): Promise<{ code: number; signal?: string }> {
    await this.ready(command.text);
    this.stats.commands++;
    const stream = await new Promise<ClientChannel>((resolve, reject) => {
      const done = (err: Error | undefined, ch: ClientChannel) => (err ? reject(new Error(`ssh ${this.name}: could not start the command (${err.message})`)) : resolve(ch));
      const pty = opts.pty ? { pty: { rows: opts.pty.rows, cols: opts.pty.cols, term: opts.pty.term ?? "xterm-256color" } } : {};
      this.client.exec(command.text, { ...this.execOptions(), ...pty }, done);
    });
    return followSession(stream, opts, (n) => (this.stats.bytesReceived += n), () => new ConnectionLostError(this.name, command.text, true, "while the command ran"));
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

/**
 * What runs over one channel of a host's SSH connection once it is open: an HTTP GET to an
 * address as the host sees it, a TLS handshake to learn which certificate a server presents,
 * a command's output followed as it comes. The connection (executor.ts) opens the channel,
 * bounds the concurrency and counts the bytes.
 */
import http from "node:http";
import tls from "node:tls";
import type { ClientChannel } from "ssh2";

/** An HTTP GET over a forwarded channel, the whole exchange bounded by `timeoutMs`. */
export function httpOverChannel(channel: ClientChannel, host: string, port: number, path: string, timeoutMs: number, onBytes: (n: number) => void): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, path, method: "GET", createConnection: () => channel, headers: { connection: "close" }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => {
          onBytes(c.length);
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
}

/** The certificate a TLS server presents for a name over a forwarded channel, unverified;
 * undefined when no handshake completes within `timeoutMs`. */
export function tlsPeerOverChannel(channel: ClientChannel, servername: string, timeoutMs: number): Promise<{ subject: string; fingerprint: string } | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ socket: channel, servername, rejectUnauthorized: false });
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
}

export interface SessionOptions {
  pty?: { rows: number; cols: number; term?: string };
  input?: NodeJS.ReadableStream;
  onStdout: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/** A started command's output passed through as it comes, its input fed from `input`,
 * until it exits or `signal` aborts it; `lost` is the error when the channel closes first. */
export function followSession(stream: ClientChannel, opts: SessionOptions, onBytes: (n: number) => void, lost: () => Error): Promise<{ code: number; signal?: string }> {
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
      onBytes(c.length);
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
      // The exit status may be reported just after the channel closes: a short wait for it
      // before calling the command's end a lost connection.
      else setTimeout(() => (exit ? resolve(exit) : reject(lost())), 250);
    });
  });
}

/**
 * Tunnels over a host's SSH connection (host key verified, as every command's):
 * - a local socket that reaches a unix socket on the host (its Docker engine, for a
 *   remote builder), as `ssh -L local.sock:/var/run/docker.sock`;
 * - a port on the host's loopback that reaches the same port on this machine's loopback (a
 *   registry here, for pulls there: Kamal 2's local registry), as `ssh -R`.
 * Each lasts until closed; connections through it end with it.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import type { ClientChannel } from "ssh2";
import type { SshConnection } from "./executor";

export interface Tunnel {
  close(): Promise<void>;
}

function join(a: Socket, b: ClientChannel): void {
  a.pipe(b).pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.on("error", end);
  b.on("error", end);
  a.on("close", end);
  b.on("close", end);
}

/** A unix socket at `localPath` whose every connection is carried to `remotePath` on the
 * host (OpenSSH's streamlocal forwarding). */
export async function forwardToRemoteSocket(conn: SshConnection, localPath: string, remotePath: string): Promise<Tunnel> {
  mkdirSync(path.dirname(localPath), { recursive: true, mode: 0o700 });
  rmSync(localPath, { force: true });
  const open = new Set<Socket>();
  const server: Server = createServer((socket) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    conn
      .tunnelClient()
      .then(
        (client) =>
          new Promise<ClientChannel>((resolve, reject) =>
            client.openssh_forwardOutStreamLocal(remotePath, (err, ch) => (err ? reject(err) : resolve(ch))),
          ),
      )
      .then((ch) => join(socket, ch), () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(localPath, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => {
          rmSync(localPath, { force: true });
          resolve();
        });
      }),
  };
}

const remotePorts = new WeakMap<object, Map<number, { users: number; ready: Promise<() => Promise<void>> }>>();

/** The host's 127.0.0.1:`port` carried to this machine's 127.0.0.1:`port` (OpenSSH's remote
 * forwarding). Shared: concurrent pulls on one host use one forwarding, which ends with its
 * last user. Fails when the port is taken on the host. */
export async function forwardFromRemotePort(conn: SshConnection, port: number): Promise<Tunnel> {
  const client = await conn.tunnelClient();
  const byPort = remotePorts.get(client) ?? new Map();
  remotePorts.set(client, byPort);
  let entry = byPort.get(port);
  if (!entry) {
    const onConnection = (info: { destPort: number }, accept: () => ClientChannel) => {
      if (info.destPort !== port) return;
      join(createConnection({ host: "127.0.0.1", port }), accept());
    };
    client.on("tcp connection", onConnection);
    const ready = new Promise<() => Promise<void>>((resolve, reject) =>
      client.forwardIn("127.0.0.1", port, (err) => {
        if (err) {
          client.off("tcp connection", onConnection);
          byPort.delete(port);
          reject(new Error(`${conn.name}: could not listen on 127.0.0.1:${port} for the local registry (${err.message})`));
        } else {
          resolve(() => new Promise<void>((done) => {
            client.off("tcp connection", onConnection);
            client.unforwardIn("127.0.0.1", port, () => done());
          }));
        }
      }),
    );
    entry = { users: 0, ready };
    byPort.set(port, entry);
  }
  const mine = entry;
  mine.users++;
  let stop: () => Promise<void>;
  try {
    stop = await mine.ready;
  } catch (e) {
    mine.users--;
    throw e;
  }
  let closed = false;
  return {
    close: async () => {
      if (closed) return;
      closed = true;
      if (--mine.users === 0 && byPort.get(port) === mine) {
        byPort.delete(port);
        await stop();
      }
    },
  };
}

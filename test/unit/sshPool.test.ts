/** The pool's handshakes queue at maxConcurrentStarts (Kamal's sshkit.max_concurrent_starts),
 * against a real SSH server (ssh2's) on loopback that holds each login for a while. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Server, utils } from "ssh2";
import type { AddressInfo } from "node:net";
import { SshPool } from "../../provider/ssh/pool";

/** An ed25519 pair ssh2 can read back: its generator drops a leading zero byte of the public
 * key about once in 256 pairs, making a key it then refuses as malformed (mscdex/ssh2#1513),
 * which failed this file now and then. */
function keyPair(): { private: string; public: string } {
  for (;;) {
    const k = utils.generateKeyPairSync("ed25519");
    if (!(utils.parseKey(k.private) instanceof Error) && !(utils.parseKey(k.public) instanceof Error)) return k;
  }
}
const hostKey = keyPair();
const clientKey = keyPair();
let server: Server;
let port: number;
let inFlight = 0;
let most = 0;
const clients = new Set<{ end(): void }>();

beforeAll(async () => {
  server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    clients.add(client);
    client.on("close", () => clients.delete(client));
    // From the first auth request until the login is done: a handshake in flight.
    let counted = false;
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey") return ctx.reject(["publickey"]);
      if (!counted) {
        counted = true;
        most = Math.max(most, ++inFlight);
      }
      // Long enough that the handshakes a pool lets through overlap even on a loaded machine.
      setTimeout(() => ctx.accept(), 400);
    });
    client.on("ready", () => inFlight--);
    client.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const c of clients) c.end();
  await new Promise<void>((r) => server.close(() => r()));
});

const target = (user: string, maxConcurrentStarts?: number) => ({
  host: "127.0.0.1",
  port,
  user,
  privateKey: clientKey.private,
  hostKey: hostKey.public.split(" ").slice(0, 2).join(" "),
  ...(maxConcurrentStarts ? { maxConcurrentStarts } : {}),
});

describe("the SSH pool's concurrent starts", () => {
  it("opens at most maxConcurrentStarts connections at once; the rest wait their turn and connect", async () => {
    const pool = new SshPool();
    most = 0;
    const conns = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.connect(target(`u${i}`, 2))));
    expect(conns.every((c) => c.usable)).toBe(true);
    expect(most).toBe(2);
    pool.closeAll();
  });

  it("opens them all at once below Kamal's default of 30", async () => {
    const pool = new SshPool();
    most = 0;
    await Promise.all(Array.from({ length: 6 }, (_, i) => pool.connect(target(`v${i}`))));
    expect(most).toBe(6);
    pool.closeAll();
  });
});

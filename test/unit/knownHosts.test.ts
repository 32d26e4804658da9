import { createHmac, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fingerprint, keyTypeOf, parseKnownHosts, verifyHostKey } from "../../provider/ssh/knownHosts";

function sshEd25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const type = Buffer.from("ssh-ed25519");
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([len(type.length), type, len(raw.length), raw]);
}

describe("known_hosts", () => {
  const keyA = sshEd25519Blob();
  const keyB = sshEd25519Blob();
  const b64 = (k: Buffer) => k.toString("base64");

  it("accepts the recorded key, refuses another and an unknown host", () => {
    const entries = parseKnownHosts(`# comment\n10.0.0.1,web-1 ssh-ed25519 ${b64(keyA)}\n[10.0.0.2]:2222 ssh-ed25519 ${b64(keyB)} c\n`);
    expect(keyTypeOf(keyA)).toBe("ssh-ed25519");
    expect(verifyHostKey(entries, "10.0.0.1", 22, keyA)).toEqual({ ok: true });
    expect(verifyHostKey(entries, "web-1", 22, keyA)).toEqual({ ok: true });
    expect(verifyHostKey(entries, "10.0.0.1", 22, keyB)).toEqual({ ok: false, reason: "mismatch", presented: fingerprint(keyB) });
    expect(verifyHostKey(entries, "10.0.0.2", 2222, keyB)).toEqual({ ok: true });
    expect(verifyHostKey(entries, "10.0.0.2", 22, keyB)).toEqual({ ok: false, reason: "unknown", presented: fingerprint(keyB) });
  });

  it("matches hashed hosts, wildcards, negations and @revoked", () => {
    const salt = Buffer.from("0123456789abcdef0123");
    const hash = createHmac("sha1", salt).update("db.internal").digest();
    const entries = parseKnownHosts(
      [
        `|1|${salt.toString("base64")}|${hash.toString("base64")} ssh-ed25519 ${b64(keyA)}`,
        `*.prod,!bad.prod ssh-ed25519 ${b64(keyB)}`,
        `@revoked * ssh-ed25519 ${b64(keyA)}`,
      ].join("\n"),
    );
    expect(verifyHostKey(entries, "db.internal", 22, keyA)).toMatchObject({ ok: false, reason: "revoked" });
    expect(verifyHostKey(entries, "api.prod", 22, keyB)).toEqual({ ok: true });
    expect(verifyHostKey(entries, "bad.prod", 22, keyB)).toMatchObject({ ok: false, reason: "unknown" });
  });

  it("prints OpenSSH-style fingerprints", () => {
    expect(fingerprint(keyA)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

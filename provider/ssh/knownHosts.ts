import { createHash, createHmac } from "node:crypto";

/** One usable line of an OpenSSH known_hosts file. */
export interface KnownHostEntry {
  readonly patterns: readonly string[];
  readonly hashed?: { salt: Buffer; hash: Buffer };
  readonly keyType: string;
  readonly key: Buffer;
  readonly revoked: boolean;
}

/** Parses known_hosts text; comments, blank lines and @cert-authority lines are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    let fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0].startsWith("@")) {
      if (fields[0] !== "@revoked") continue;
      revoked = true;
      fields = fields.slice(1);
    }
    if (fields.length < 3) continue;
    const [hosts, keyType, keyB64] = fields;
    const key = Buffer.from(keyB64, "base64");
    if (hosts.startsWith("|1|")) {
      const [, , salt, hash] = hosts.split("|");
      entries.push({
        patterns: [],
        hashed: { salt: Buffer.from(salt, "base64"), hash: Buffer.from(hash, "base64") },
        keyType, key, revoked,
      });
    } else {
      entries.push({ patterns: hosts.split(","), keyType, key, revoked });
    }
  }
  return entries;
}

/** The name known_hosts uses for a host: `addr` on port 22, `[addr]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$",
    "i",
  );
  return re.test(name);
}

function entryMatches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hashed) {
    const mac = createHmac("sha1", entry.hashed.salt).update(name).digest();
    return mac.equals(entry.hashed.hash);
  }
  let matched = false;
  for (const p of entry.patterns) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The entries that apply to a host. */
export function entriesFor(entries: readonly KnownHostEntry[], host: string, port: number) {
  const name = knownHostsName(host, port);
  return entries.filter((e) => entryMatches(e, name));
}

/** OpenSSH's SHA256 fingerprint of a raw public key, for messages. */
export function fingerprint(key: Buffer): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/** The key type named inside a raw SSH public key blob (its first string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return "unknown";
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString("ascii");
}

export type HostKeyVerdict =
  | { ok: true }
  | { ok: false; reason: "unknown" | "mismatch" | "revoked"; presented: string };

/** Decides whether a presented host key is the one recorded for the host. */
export function verifyHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  presented: Buffer,
): HostKeyVerdict {
  const applicable = entriesFor(entries, host, port);
  const fp = fingerprint(presented);
  if (applicable.some((e) => e.revoked && e.key.equals(presented))) {
    return { ok: false, reason: "revoked", presented: fp };
  }
  const known = applicable.filter((e) => !e.revoked);
  if (known.some((e) => e.key.equals(presented))) return { ok: true };
  return { ok: false, reason: known.length === 0 ? "unknown" : "mismatch", presented: fp };
}

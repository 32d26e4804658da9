/**
 * kamal-proxy, the proxy Kamal 2 runs on each host (container `kamal-proxy`, on the `kamal`
 * network, publishing 80 and 443): what a takeover needs to read from it. Pure.
 */
import { createHash } from "node:crypto";
import { Command } from "./command";

/** Kamal 2's proxy container name (Kamal::Configuration::Proxy::Boot#container_name). */
export const KAMAL_PROXY_CONTAINER = "kamal-proxy";

export interface KamalProxyService {
  /** Kamal's service name: `service-role[-destination]`, as our scopes. */
  name: string;
  /** Host names (empty: every request). */
  hosts: string[];
  /** Path prefixes (empty or "/": every path). */
  paths: string[];
  /** Targets as kamal-proxy dials them: `<container id or name>:<port>`. */
  targets: string[];
  state: string;
  tls: boolean;
}

/** `kamal-proxy list` inside its container: a table of the services it routes. */
export function kamalProxyList(): Command {
  return Command.read(["docker", "exec", KAMAL_PROXY_CONTAINER, "kamal-proxy", "list"]);
}

/** Parses `kamal-proxy list` (v0.9): a header row (Service Host Path Target State TLS), each
 * column padded to its widest cell plus two spaces, cells styled with ANSI codes. Cells may
 * be empty (no host), so columns are cut at the header's positions. */
export function parseKamalProxyList(text: string): KamalProxyService[] {
  // eslint-disable-next-line no-control-regex
  const lines = text.replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((l) => l.trim());
  if (!lines.length) return [];
  const header = lines[0];
  const columns = ["Service", "Host", "Path", "Target", "State", "TLS"];
  const starts = columns.map((c) => new RegExp(`(^|\\s)${c}(\\s|$)`).exec(header)).map((m) => (m ? m.index + (m[1] ? 1 : 0) : -1));
  if (starts.some((s) => s < 0)) throw new Error(`unexpected \`kamal-proxy list\` output: ${header.trim()}`);
  const cell = (line: string, i: number) => line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim();
  const list = (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean);
  return lines.slice(1).map((line) => ({
    name: cell(line, 0),
    hosts: list(cell(line, 1)).filter((h) => h !== "*"),
    paths: list(cell(line, 2)).filter((p) => p !== "/"),
    targets: list(cell(line, 3)),
    state: cell(line, 4),
    tls: cell(line, 5) === "yes",
  }));
}

/** kamal-proxy's saved state in its container (`kamal-proxy.state` in its data directory,
 * the `kamal-proxy-config` volume Kamal mounts at `~kamal-proxy/.config/kamal-proxy`). */
export const KAMAL_PROXY_STATE = "/home/kamal-proxy/.config/kamal-proxy/kamal-proxy.state";

/** A service kamal-proxy serves over HTTPS, and where its certificate lies in the container. */
export interface KamalProxyTls {
  service: string;
  hosts: string[];
  /** Plain HTTP is redirected to HTTPS (kamal-proxy's `--tls-redirect`, on by default). */
  redirect: boolean;
  /** `files`: the user's own certificate (`proxy.ssl.certificate_pem`), as Kamal uploads it;
   * `acme`: the directory of kamal-proxy's Let's Encrypt cache (Go's autocert), one file per
   * host name holding the key and the chain. */
  source: { kind: "files"; certificate: string; key: string } | { kind: "acme"; cache: string };
}

/** The HTTPS services of kamal-proxy's saved state (v0.8+: a JSON array of services with
 * their `options`). */
export function parseKamalProxyState(text: string): KamalProxyTls[] {
  const services = JSON.parse(text || "[]") as { name?: string; options?: Record<string, unknown> }[];
  const out: KamalProxyTls[] = [];
  for (const s of Array.isArray(services) ? services : []) {
    const o = s.options ?? {};
    if (!s.name || o.tls_enabled !== true) continue;
    const str = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : "");
    const hosts = Array.isArray(o.hosts) ? (o.hosts as unknown[]).filter((h): h is string => typeof h === "string") : [];
    const source: KamalProxyTls["source"] =
      str("tls_certificate_path") && str("tls_private_key_path")
        ? { kind: "files", certificate: str("tls_certificate_path"), key: str("tls_private_key_path") }
        : { kind: "acme", cache: autocertCache(str("acme_cache_path"), str("acme_directory")) };
    out.push({ service: s.name, hosts, redirect: o.tls_redirect !== false, source });
  }
  return out;
}

/** kamal-proxy scopes its ACME cache by the directory URL it asks (ServiceOptions
 * ScopedCachePath): the cache path, then the SHA-256 of the URL in hex. */
export function autocertCache(cachePath: string, directoryUrl: string): string {
  return `${cachePath.replace(/\/+$/, "")}/${createHash("sha256").update(directoryUrl).digest("hex")}`;
}

/** The file names autocert caches a host's certificate under: ECDSA (what clients ask for
 * today), then RSA. */
export function autocertFiles(cache: string, host: string): string[] {
  return [`${cache}/${host}`, `${cache}/${host}+rsa`];
}

/** A file of kamal-proxy's container on stdout (its image has no shell: `docker cp` gives a
 * tar stream, the host's tar unpacks it). */
export function kamalProxyFile(path: string): Command {
  return Command.pipe(Command.read(["docker", "cp", `${KAMAL_PROXY_CONTAINER}:${path}`, "-"]), Command.read(["tar", "-xOf", "-"], { engine: false }));
}

/** An autocert cache entry (the private key's PEM block, then the chain's) as a key and a
 * chain; undefined if it is not one. */
export function splitKeyAndChain(pem: string): { certificatePem: string; privateKeyPem: string } | undefined {
  const blocks = pem.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----\n?/g) ?? [];
  const key = blocks.filter((b) => /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(b));
  const chain = blocks.filter((b) => b.startsWith("-----BEGIN CERTIFICATE-----"));
  if (key.length !== 1 || !chain.length) return undefined;
  const nl = (b: string) => (b.endsWith("\n") ? b : `${b}\n`);
  return { privateKeyPem: nl(key[0]), certificatePem: chain.map(nl).join("") };
}

/**
 * kamal-proxy, the proxy Kamal 2 runs on each host (container `kamal-proxy`, on the `kamal`
 * network, publishing 80 and 443): what a takeover needs to read from it. Pure.
 */
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

/**
 * `pulumi-kamal details`: per role and host what runs (read from the host, not the state):
 * version, container, status, health, uptime, image digest; then accessories and Traefik.
 */
import * as docker from "../provider/commands/docker";
import { describeContainers, repoDigests } from "../provider/commands/operator";
import type { SshConnection } from "../provider/ssh/executor";
import { lines } from "../provider/handlers/common";
import { connect, eachHost, type HostError } from "./remote";
import type { AppOnHost, Deployed } from "./stack";

export interface ContainerRow {
  kind: "app" | "accessory" | "traefik";
  service?: string;
  role?: string;
  destination?: string;
  /** The accessory's name. */
  name?: string;
  host: string;
  address: string;
  container: string;
  /** The version it runs (its label) and the one the state records. */
  version?: string;
  stateVersion?: string;
  status: string;
  health: string;
  startedAt?: string;
  uptime?: string;
  restarts?: number;
  image: string;
  digest?: string;
}

interface Inspected {
  status: string;
  health: string;
  startedAt: string;
  imageId: string;
  image: string;
  version: string;
  restarts: number;
}

export function parseInspect(line: string): Inspected | undefined {
  const [name, status, health, startedAt, imageId, image, version, restarts] = line.split("\t");
  if (!name || !status) return undefined;
  return { status, health: health || "-", startedAt, imageId, image, version: version === "<no value>" ? "" : version, restarts: Number(restarts) || 0 };
}

/** "3d 4h", "2h 5m", "4m 10s", "12s". */
export function uptime(startedAt: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(startedAt)) / 1000));
  if (!Number.isFinite(s)) return "-";
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export async function details(d: Deployed, opts: { host?: string } = {}): Promise<{ rows: ContainerRow[]; errors: HostError[] }> {
  type Item = { cfg: { hostName: string; connection: Deployed["apps"][number]["cfg"]["connection"] }; app?: AppOnHost; row: Omit<ContainerRow, "status" | "health" | "image"> & { image?: string } };
  const items: Item[] = [
    ...d.apps.map((a) => ({ cfg: a.cfg, app: a, row: { kind: "app" as const, service: a.cfg.service, role: a.cfg.role, destination: a.cfg.destination, host: a.cfg.hostName, address: a.cfg.connection.host, container: a.container, stateVersion: a.cfg.version, digest: a.imageDigest } })),
    ...d.accessories.map((a) => ({ cfg: a.cfg, row: { kind: "accessory" as const, service: a.cfg.service, name: a.cfg.name, host: a.cfg.hostName, address: a.cfg.connection.host, container: a.container } })),
    ...d.traefiks.map((t) => ({ cfg: t.cfg, row: { kind: "traefik" as const, host: t.cfg.hostName, address: t.cfg.connection.host, container: t.container } })),
  ].filter((i) => !opts.host || i.cfg.hostName === opts.host || i.cfg.connection.host === opts.host);
  const { results, errors } = await eachHost(items, "reading its containers", async (i) => {
    const conn = await connect(i.cfg.connection);
    const out = await conn.run(describeContainers([i.row.container]));
    const seen = parseInspect(lines(out.stdout)[0] ?? "");
    if (!seen) return { ...i.row, status: "missing", health: "-", image: i.row.image ?? "-" } satisfies ContainerRow;
    const digest = (await conn.run(repoDigests(seen.imageId))).stdout.trim().split(" ").find((x) => x.includes("@sha256:"));
    // A role routed by route files has no Docker health check: its check is asked, as the
    // provider asks it before moving traffic.
    const hc = i.app?.cfg.healthcheck;
    const health = seen.health === "-" && hc && !hc.cmd && seen.status === "running" ? await probe(conn, i.row.container, hc) : seen.health;
    return {
      ...i.row,
      version: i.row.kind === "app" ? seen.version : undefined,
      status: seen.status,
      health,
      startedAt: seen.startedAt,
      uptime: seen.status === "running" ? uptime(seen.startedAt) : "-",
      restarts: seen.restarts,
      image: seen.image,
      digest: digest?.slice(digest.indexOf("@") + 1) ?? i.row.digest ?? seen.imageId,
    } satisfies ContainerRow;
  });
  return { rows: results.filter((r): r is ContainerRow => !!r), errors };
}

/** "healthy" when the health check's path answers 2xx, else why not. */
async function probe(conn: SshConnection, container: string, hc: { path: string; port: number; timeout: number }): Promise<string> {
  const ip = (await conn.run(docker.containerIp(container))).stdout.trim().split(" ")[0];
  if (!ip) return "unhealthy (no address)";
  const r = await conn.httpGet(ip, hc.port, hc.path, hc.timeout * 1000).catch((e: Error) => e);
  if (r instanceof Error) return "unhealthy (no answer)";
  return r.status >= 200 && r.status < 300 ? "healthy" : `unhealthy (HTTP ${r.status})`;
}

/** Columns padded to their widest cell; the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join("  ").trimEnd()).join("\n");
}

const short = (digest?: string) => (digest ? digest.replace(/^sha256:/, "").slice(0, 12) : "-");

/** The readable form: one table per kind. */
export function formatDetails(d: Deployed, rows: ContainerRow[]): string {
  const out: string[] = [`Stack ${d.stack}`];
  const apps = rows.filter((r) => r.kind === "app");
  if (apps.length) {
    out.push("", "Apps");
    out.push(
      table([
        ["SERVICE", "ROLE", "HOST", "VERSION", "CONTAINER", "STATUS", "HEALTH", "UPTIME", "RESTARTS", "DIGEST"],
        ...apps.map((r) => [
          r.destination ? `${r.service} (${r.destination})` : r.service!,
          r.role!,
          `${r.host} (${r.address})`,
          r.version && r.version !== r.stateVersion ? `${r.version} (state: ${r.stateVersion})` : (r.version ?? "-"),
          r.container,
          r.status,
          r.health,
          r.uptime ?? "-",
          String(r.restarts ?? "-"),
          short(r.digest),
        ]),
      ]),
    );
  }
  const accessories = rows.filter((r) => r.kind === "accessory");
  if (accessories.length) {
    out.push("", "Accessories");
    out.push(table([["NAME", "HOST", "CONTAINER", "IMAGE", "STATUS", "HEALTH", "UPTIME"], ...accessories.map((r) => [r.name!, `${r.host} (${r.address})`, r.container, r.image, r.status, r.health, r.uptime ?? "-"])]));
  }
  const traefiks = rows.filter((r) => r.kind === "traefik");
  if (traefiks.length) {
    out.push("", "Traefik");
    out.push(table([["HOST", "CONTAINER", "IMAGE", "STATUS", "UPTIME"], ...traefiks.map((r) => [`${r.host} (${r.address})`, r.container, r.image, r.status, r.uptime ?? "-"])]));
  }
  if (!apps.length && !accessories.length && !traefiks.length) out.push("", "(nothing deployed)");
  return out.join("\n");
}

/**
 * Replacing the proxy that holds a host's web port by a new Traefik without refusing a
 * connection: the previous Traefik (a configuration change), Kamal 1's Traefik, or Kamal
 * 2's kamal-proxy (a takeover).
 *
 * 1. A bridge Traefik with the new configuration starts without a published port and is
 *    checked to have loaded every route the host has (route files, container labels).
 * 2. A DNAT rule ahead of Docker's sends new connections for the port to the bridge; open
 *    ones stay with the incumbent (connection tracking).
 * 3. The incumbent stops (finishing its in-flight requests) and the new Traefik starts on
 *    the port, and is checked the same way.
 * 4. The rule goes: new connections reach the new Traefik. The bridge tells each client to
 *    reconnect after its next response (keepAliveMaxTime), then drains and is removed.
 *
 * It needs iptables (root, or passwordless sudo); without it the port changes hands with a
 * short gap (new connections refused), as Kamal's own proxy reboots do, and says so.
 */
import { readFile } from "../commands/files";
import * as docker from "../commands/docker";
import { addRedirect, deleteListedRule, listRedirects, probeIptables, removeRedirect, type Redirect } from "../commands/portRedirect";
import { KAMAL_PROXY_CONTAINER } from "../commands/kamalProxy";
import { listRouteFiles, routeRouters, routeRules, ruleHosts, ROUTES_IN_TRAEFIK } from "../commands/proxy";
import { bridgeTraefik, KEEPALIVE_MAX_SECONDS, knowsKeepAliveMax, replaceKamalProxy, replaceTraefik, trafficPorts, TRAEFIK_NAME, type TraefikDirs } from "../commands/traefik";
import type { TraefikContainerConfig } from "../config/schemas";
import type { SshConnection } from "../ssh/executor";
import { lines, progress, sleep } from "./common";
import { TRAEFIK_API_CONTAINER_PORT } from "./routing";

/** How long after new connections go elsewhere every busy keep-alive client has moved. */
const ROTATE_MS = KEEPALIVE_MAX_SECONDS * 1000 + 500;
/** How long a proxy is given to accept the connections its kernel queued before it stops
 * (generous: a loaded host schedules it late). */
const ACCEPT_QUEUE_MS = 1000;

export type IncumbentKind = "traefik" | "kamal-proxy";

/** The proxy container that holds (or held) the web port. */
export interface Incumbent {
  name: string;
  kind: IncumbentKind;
  running: boolean;
  image: string;
  /** Started by this provider (it watches our route directory). */
  ours: boolean;
}

/** What holds the port: the host's running Traefik (ours or Kamal 1's), else a running
 * kamal-proxy, else a stopped Traefik (which holds nothing). */
export async function findIncumbent(conn: SshConnection): Promise<Incumbent | undefined> {
  const format = `{{.State.Status}} {{.Config.Image}} {{range .Mounts}}{{if eq .Destination "${ROUTES_IN_TRAEFIK}"}}ours{{end}}{{end}}`;
  const found: Incumbent[] = [];
  for (const [name, kind] of [
    [TRAEFIK_NAME, "traefik"],
    [KAMAL_PROXY_CONTAINER, "kamal-proxy"],
  ] as const) {
    const r = await conn.run(docker.inspectContainer(name, format));
    if (r.code !== 0) continue;
    const [status, image, ours] = r.stdout.trim().split(" ");
    found.push({ name, kind, running: status === "running", image, ours: ours === "ours" });
  }
  return found.find((i) => i.running) ?? found.find((i) => i.kind === "traefik");
}

/** How a takeover reads in a preview and in progress lines. */
export function describeIncumbent(i: Incumbent): string {
  if (i.kind === "kamal-proxy") return `Kamal 2's kamal-proxy (${i.image}): its routes move to Traefik, then it is stopped (kept)`;
  if (!i.ours) return `Kamal's Traefik (${i.image}, not started by this provider): replaced by this one, routing what it routed`;
  return `the Traefik this provider started (${i.image})`;
}

/** The routers Traefik must list before it may take traffic: one per route file, and one
 * per router label of every running container that its Docker provider routes (healthy
 * or without a health check, not `traefik.enable=false`); and the host names their rules
 * name. */
async function expectedRouters(conn: SshConnection, routesDir: string): Promise<{ routers: string[]; names: string[] }> {
  const out: string[] = [];
  const rules: string[] = [];
  // Every router of every route file (a scope with ssl has two); certificate files have none.
  const files = await conn.run(listRouteFiles(routesDir));
  for (const f of lines(files.stdout)) {
    const text = (await conn.run(readFile(f))).stdout;
    const routers = routeRouters(text);
    rules.push(...routeRules(text));
    const scope = f.slice(f.lastIndexOf("/") + 1).replace(/\.yml$/, "");
    out.push(...(routers.length ? routers : [scope]).map((r) => `${r}@file`));
  }
  for (const l of lines((await conn.run(docker.runningContainerLabels())).stdout)) {
    const [, health, json] = l.split("\t");
    if (health && health !== "healthy") continue;
    let labels: Record<string, string>;
    try {
      labels = JSON.parse(json) as Record<string, string>;
    } catch {
      continue;
    }
    if (labels["traefik.enable"] === "false") continue;
    for (const [key, value] of Object.entries(labels)) {
      const m = /^traefik\.http\.routers\.([^.]+)\.rule$/.exec(key);
      if (m) {
        out.push(`${m[1]}@docker`);
        rules.push(value);
      }
    }
  }
  return { routers: out, names: [...new Set(rules.flatMap(ruleHosts))] };
}

/** The subject of the certificate Traefik makes up when it has none for a name. */
const TRAEFIK_DEFAULT_CERT = "TRAEFIK DEFAULT CERT";

/** A (port, name) pair whose real certificate a Traefik must present before it takes traffic. */
export interface ServedCertificate {
  /** The host port clients use (the key between the incumbent and its successors). */
  hostPort: string;
  name: string;
}

/** The names for which the incumbent presents a certificate of its own (not Traefik's
 * made-up one) on each traffic port: its successor must present one too before it takes
 * traffic, or HTTPS clients would meet the made-up one while it loads its store. */
async function servedCertificates(conn: SshConnection, incumbent: string, ports: { host: string }[], names: string[]): Promise<ServedCertificate[]> {
  if (!names.length) return [];
  const ip = (await conn.run(docker.containerIp(incumbent))).stdout.trim().split(" ")[0];
  const bindings = (await conn.run(docker.inspectContainer(incumbent, "{{json .HostConfig.PortBindings}}"))).stdout.trim();
  let bound: Record<string, { HostIp?: string; HostPort?: string }[] | null> = {};
  try {
    bound = (JSON.parse(bindings || "{}") as typeof bound) ?? {};
  } catch {
    return [];
  }
  if (!ip) return [];
  const out: ServedCertificate[] = [];
  for (const p of ports) {
    const hostPort = p.host.slice(p.host.lastIndexOf(":") + 1);
    const containerPort = Object.entries(bound).find(([, bs]) => (bs ?? []).some((b) => b.HostPort === hostPort))?.[0];
    if (!containerPort || !containerPort.endsWith("/tcp")) continue;
    for (const name of names) {
      const cert = await conn.tlsPeer(ip, Number(containerPort.replace("/tcp", "")), name);
      if (cert && cert.subject !== TRAEFIK_DEFAULT_CERT) out.push({ hostPort: p.host, name });
    }
  }
  return out;
}

const SERVING_DEADLINE_MS = 30_000;

/** Waits until the Traefik in `container` lists every router the host has (asked through
 * its API at its own address; without an API, once it has started its providers) and
 * presents a certificate of its own for every name in `certs`. */
async function waitServing(
  conn: SshConnection,
  container: string,
  routesDir: string,
  api: boolean,
  certs: { container: number; name: string }[] = [],
): Promise<void> {
  const t0 = Date.now();
  const ip = (await conn.exec(docker.containerIp(container))).stdout.trim().split(" ")[0];
  let missing: string[] = [];
  let madeUp: string[] = [];
  let routed = false;
  for (;;) {
    if (!routed && api && ip) {
      const { routers: expected } = await expectedRouters(conn, routesDir);
      const answer = await conn.httpGet(ip, TRAEFIK_API_CONTAINER_PORT, "/api/http/routers?per_page=10000", 2000).catch(() => undefined);
      if (answer?.status === 200) {
        const names = new Set((JSON.parse(answer.body) as { name: string }[]).map((r) => r.name));
        missing = expected.filter((n) => !names.has(n));
        routed = !missing.length;
      }
    } else if (!routed && !api && /Starting provider/.test((await conn.run(docker.containerLogs(container, 50))).stdout)) {
      await sleep(1000);
      routed = true;
    }
    if (routed && ip) {
      madeUp = [];
      for (const c of certs) {
        const cert = await conn.tlsPeer(ip, c.container, c.name);
        if (!cert || cert.subject === TRAEFIK_DEFAULT_CERT) madeUp.push(c.name);
      }
      if (!madeUp.length) return;
    }
    const [status] = (await conn.run(docker.containerState(container))).stdout.trim().split(" ");
    if (status !== "running") throw new Error(`${container} is ${status || "gone"}`);
    if (Date.now() - t0 > SERVING_DEADLINE_MS) {
      const what = !routed
        ? missing.length
          ? `load the routes ${missing.join(", ")}`
          : "answer on its API"
        : `present the certificate the previous proxy serves for ${[...new Set(madeUp)].join(", ")} (it presented Traefik's default one)`;
      throw new Error(`${container} did not ${what} within ${SERVING_DEADLINE_MS / 1000}s`);
    }
    await sleep(200);
  }
}

/** Whether this SSH user can change iptables: false = as itself (root), true = with sudo,
 * undefined = not at all. */
export async function iptablesAccess(conn: SshConnection): Promise<boolean | undefined> {
  if ((await conn.run(probeIptables(false))).code === 0) return false;
  if ((await conn.run(probeIptables(true))).code === 0) return true;
  return undefined;
}

/** Rules and bridges an interrupted handover left: the rules go first (the incumbent holds
 * the port and serves), then the bridges drain. */
async function clearLeftovers(conn: SshConnection, sudo: boolean, host: string): Promise<void> {
  const listed = lines((await conn.run(listRedirects(sudo))).stdout);
  for (const line of listed) {
    const cmd = deleteListedRule(line, sudo);
    if (cmd) await conn.run(cmd);
  }
  const bridges = lines((await conn.run(docker.containerNames(`^${TRAEFIK_NAME}_handover_`))).stdout);
  if (listed.length || bridges.length) progress(host, `removing what an interrupted handover left (${listed.length} rule(s), ${bridges.length} bridge(s))`);
  for (const b of bridges) {
    await conn.run(docker.stopContainer(b, 10));
    await conn.run(docker.removeContainers([b], true));
  }
}

export interface Handed {
  /** The incumbent, stopped: renamed aside (a Traefik) or under its own name (kamal-proxy). */
  retired: { name: string; renamed: boolean };
  /** Whether new connections were never refused (else how long the port was closed). */
  gapless: boolean;
  closedMs: number;
}

/**
 * Moves the port from the running `incumbent` to the prepared container `next`, which takes
 * the name `traefik`. On failure before the new Traefik serves, the incumbent serves again.
 */
export async function handOver(
  conn: SshConnection,
  cfg: TraefikContainerConfig,
  incumbent: Incumbent,
  at: { next: string; hex: string; envFile?: string; dirs: TraefikDirs },
): Promise<Handed> {
  const host = cfg.hostName;
  const api = cfg.apiPort > 0;
  const aside = `${TRAEFIK_NAME}_old_${at.hex}`;
  const retired = incumbent.kind === "traefik" ? { name: aside, renamed: true } : { name: incumbent.name, renamed: false };
  const replace = incumbent.kind === "traefik" ? replaceTraefik(TRAEFIK_NAME, aside, at.next, 10) : replaceKamalProxy(incumbent.name, at.next, 10);

  const sudo = await iptablesAccess(conn);
  if (sudo === undefined) {
    progress(host, `iptables cannot be changed as ${cfg.connection.user} (not root, no passwordless sudo): new connections are refused while the port changes hands`);
    const t0 = Date.now();
    const r = await conn.run(replace);
    const closedMs = Date.now() - t0;
    if (r.code !== 0) {
      await putBack(conn, incumbent, retired, at.next);
      throw new Error(`the new Traefik did not start (the previous proxy was restarted): ${r.stderr.trim()}`);
    }
    return { retired, gapless: false, closedMs };
  }

  await clearLeftovers(conn, sudo, host);
  const ports = trafficPorts(cfg);
  // The certificates HTTPS clients get now: the bridge and the new Traefik present them too
  // before any client reaches them (the ACME store loads after the routes do).
  const served = await servedCertificates(conn, incumbent.name, ports, (await expectedRouters(conn, at.dirs.routes)).names);
  const certs = served.flatMap((c) => ports.filter((p) => p.host === c.hostPort).map((p) => ({ container: p.container, name: c.name })));
  const bridge = `${TRAEFIK_NAME}_handover_${at.hex}`;
  try {
    await conn.exec(bridgeTraefik(cfg, { name: bridge, envFile: at.envFile, dirs: at.dirs }));
    await waitServing(conn, bridge, at.dirs.routes, api, certs);
  } catch (e) {
    await conn.run(docker.removeContainers([bridge, at.next], true));
    throw new Error(`the bridge Traefik did not serve (${(e as Error).message}); nothing serving was touched`);
  }
  const nets = (await conn.exec(docker.containerNetworks(bridge))).stdout.trim().split(/\s+/).map((p) => p.split("="));
  const ip = (nets.find(([n]) => n === "bridge") ?? nets[0])?.[1];
  // Every port Traefik takes traffic on (80, and 443 in Kamal 1's Let's Encrypt recipe).
  const redirects: Redirect[] = ports.map((p) => ({ hostPort: p.host, to: ip, toPort: p.container, id: at.hex }));
  for (const r of redirects) await conn.exec(addRedirect(r, sudo));
  progress(host, `new connections go to a bridge Traefik while ${incumbent.name} finishes its requests`);
  // Our previous Traefik tells each keep-alive client to reconnect after its next response:
  // once they all have (to the bridge), it stops with no connection a request could be on.
  if (incumbent.ours && knowsKeepAliveMax(incumbent.image)) await sleep(ROTATE_MS);
  // Connections that reached the incumbent just before the rule may still wait in its accept
  // queue: stopping it closes its listener, which resets them. It takes them first.
  else await sleep(ACCEPT_QUEUE_MS);
  try {
    const r = await conn.run(replace);
    if (r.code !== 0) throw new Error(`the new Traefik did not start: ${r.stderr.trim()}`);
    await waitServing(conn, TRAEFIK_NAME, at.dirs.routes, api, certs);
  } catch (e) {
    // The bridge still takes new connections: the incumbent comes back, then they return to it.
    await putBack(conn, incumbent, retired, at.next);
    for (const r of redirects) await conn.run(removeRedirect(r, sudo));
    await conn.run(docker.stopContainer(bridge, 10));
    await conn.run(docker.removeContainers([bridge], true));
    for (const r of redirects) await conn.run(removeRedirect(r, sudo, true));
    throw new Error(`${(e as Error).message}; ${incumbent.name} serves again`);
  }
  for (const r of redirects) await conn.exec(removeRedirect(r, sudo));
  progress(host, `new connections reach the new Traefik; the bridge drains`);
  // Its keep-alive clients are told to reconnect after their next response.
  await sleep(ROTATE_MS);
  await conn.run(docker.stopContainer(bridge, 10));
  await conn.run(docker.removeContainers([bridge], true));
  for (const r of redirects) await conn.run(removeRedirect(r, sudo, true));
  return { retired, gapless: true, closedMs: 0 };
}

/** The incumbent serves again under its name, wherever the replacement stopped. */
async function putBack(conn: SshConnection, incumbent: Incumbent, retired: { name: string; renamed: boolean }, next: string): Promise<void> {
  const names = new Set(lines((await conn.run(docker.containerNames())).stdout));
  if (retired.renamed && names.has(retired.name)) {
    if (names.has(TRAEFIK_NAME)) await conn.run(docker.removeContainers([TRAEFIK_NAME], true));
    await conn.run(docker.renameContainer(retired.name, TRAEFIK_NAME));
  } else if (!retired.renamed && names.has(TRAEFIK_NAME)) {
    await conn.run(docker.removeContainers([TRAEFIK_NAME], true));
  }
  await conn.run(docker.removeContainers([next], true));
  await conn.run(docker.startContainer(incumbent.name));
}

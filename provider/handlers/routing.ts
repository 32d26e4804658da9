/**
 * How traffic reaches a scope's containers through the host's Traefik, and how the swap
 * moves it. Two ways, chosen per host from the Traefik that runs there:
 *
 * - routes: Traefik watches a directory of route files (started by this provider). The
 *   swap probes the new container itself, rewrites the scope's route file to name only the
 *   new container, and waits until Traefik's API shows the change: traffic moves in one
 *   step, within milliseconds, like kamal-proxy's deploy.
 * - labels: a Traefik that reads only container labels (Kamal 1's, or one started by an
 *   earlier release). Traefik routes to healthy containers; an old one leaves rotation when
 *   its cut cord turns it unhealthy (Kamal 1's way, bound by Docker's health schedule).
 *
 * Traefik's API is reached through the SSH connection (a direct-tcpip channel to its port
 * on the host's loopback): nothing is needed on the host. Only a definite answer counts.
 */
import { readFile } from "../commands/files";
import * as docker from "../commands/docker";
import { routeConfig, routeFile, routeFileRules, routeServers, ROUTES_IN_TRAEFIK, tlsConfig, tlsFile, writtenServers, type RouteSpec } from "../commands/proxy";
import { traefikCapabilities, TRAEFIK_NAME, type TraefikCapabilities } from "../commands/traefik";
import type { SshConnection } from "../ssh/executor";
import { sleep } from "./common";

/** The Traefik container name Kamal uses, and the API port inside it. */
export const TRAEFIK_CONTAINER = TRAEFIK_NAME;
export const TRAEFIK_API_CONTAINER_PORT = 8080;
const ROUTE_DEADLINE_MS = 30_000;
const API_PREFLIGHT_MS = 10_000;

interface TraefikFacts {
  /** Host directory of the route files, when this Traefik watches one. */
  routesDir?: string;
  /** Host port of the API on 127.0.0.1, when published. */
  apiPort?: number;
  /** What it can do for a route, from its arguments. */
  can: TraefikCapabilities;
}

async function traefikFacts(conn: SshConnection): Promise<TraefikFacts | undefined> {
  const format = `{{range .Mounts}}{{if eq .Destination "${ROUTES_IN_TRAEFIK}"}}{{.Source}}{{end}}{{end}}\t{{json .HostConfig.PortBindings}}\t{{json .Args}}`;
  const r = await conn.run(docker.inspectContainer(TRAEFIK_CONTAINER, format));
  if (r.code !== 0) return undefined;
  const [routesDir, bindingsJson, argsJson] = r.stdout.trim().split("\t");
  let apiPort: number | undefined;
  let argv: string[] = [];
  try {
    const bindings = JSON.parse(bindingsJson) as Record<string, { HostPort: string }[] | null>;
    const port = bindings?.[`${TRAEFIK_API_CONTAINER_PORT}/tcp`]?.[0]?.HostPort;
    if (port) apiPort = Number(port);
    argv = (JSON.parse(argsJson ?? "[]") as string[] | null) ?? [];
  } catch {
    /* no bindings */
  }
  return { routesDir: routesDir || undefined, apiPort, can: traefikCapabilities(argv) };
}

export class TraefikRouting {
  private constructor(
    private readonly conn: SshConnection,
    /** Traefik's service name for the scope (router, service, middleware). */
    private readonly name: string,
    private readonly facts: TraefikFacts,
  ) {}

  /** The host's Traefik as the swap of scope `name` sees it (undefined: no Traefik). */
  static async discover(conn: SshConnection, name: string): Promise<TraefikRouting | undefined> {
    const facts = await traefikFacts(conn);
    return facts ? new TraefikRouting(conn, name, facts) : undefined;
  }

  /** Whether traffic moves by route files (else by labels and cords). */
  get byRoutes(): boolean {
    return this.facts.routesDir !== undefined && this.facts.apiPort !== undefined;
  }

  /** What the host's Traefik can do for a route (HTTPS, maintenance page, headers). */
  get can(): TraefikCapabilities {
    return this.facts.can;
  }

  /** The rule of each scope's route file on this host, by scope name. */
  async routeRules(): Promise<Map<string, string>> {
    const rules = new Map<string, string>();
    const dir = this.facts.routesDir;
    if (!dir) return rules;
    const r = await this.conn.run(routeFileRules(dir));
    for (const line of r.stdout.split("\n")) {
      const m = /^(.*)\.yml:\s*"rule":\s*("(?:[^"\\]|\\.)*")/.exec(line);
      if (m) rules.set(m[1].slice(dir.length + 1), JSON.parse(m[2]) as string);
    }
    return rules;
  }

  /** The backends Traefik's API lists for the scope now, under a provider ("file" or
   * "docker"); undefined when Traefik gave no definite answer. [] when it has none. */
  private async servers(provider: "file" | "docker"): Promise<string[] | undefined> {
    if (this.facts.apiPort === undefined) return undefined;
    await this.conn.ready("asking Traefik's API");
    try {
      const r = await this.conn.httpGet("127.0.0.1", this.facts.apiPort, `/api/http/services/${this.name}@${provider}`, 2000);
      if (r.status === 404) return [];
      if (r.status !== 200) return undefined;
      const svc = JSON.parse(r.body) as { loadBalancer?: { servers?: { url?: string }[] } };
      return (svc.loadBalancer?.servers ?? []).map((s) => s.url ?? "");
    } catch {
      return undefined;
    }
  }

  /** The backends the scope's route file names now ([] when there is none). */
  async fileServers(): Promise<string[] | undefined> {
    if (!this.facts.routesDir) return undefined;
    const r = await this.conn.run(readFile(routeFile(this.facts.routesDir, this.name)));
    return r.code === 0 ? routeServers(r.stdout, this.name) : [];
  }

  /**
   * Before traffic moves: Traefik's API must give a definite answer (any answer about the
   * scope's route), so that the switch can be confirmed; otherwise the swap stops here,
   * before the route file is touched, and the old containers keep serving.
   */
  async confirmApi(timeoutMs = API_PREFLIGHT_MS): Promise<void> {
    const elapsed = this.conn.stopwatch();
    const limit = timeoutMs;
    for (;;) {
      if ((await this.servers("file")) !== undefined) return;
      if (elapsed() > limit) {
        throw new Error(`Traefik's API (127.0.0.1:${this.facts.apiPort} on the host) gave no answer within ${timeoutMs / 1000}s; traffic was not moved`);
      }
      await sleep(200);
    }
  }

  /**
   * Routes: makes the scope's route file name exactly `servers` (backend URLs) and waits
   * until Traefik serves that. An empty list removes the file (the route goes away).
   */
  async routeTo(spec: Omit<RouteSpec, "name">, certificate?: { certificatePem: string; privateKeyPem: string }): Promise<void> {
    const file = routeFile(this.facts.routesDir!, this.name);
    const certs = tlsFile(this.facts.routesDir!, this.name);
    if (spec.servers.length) {
      // The scope's own certificate first (mode 0600: it holds the key), so that the route
      // that needs it never loads without it.
      if (certificate) await this.conn.upload(certs, tlsConfig(certificate), 0o600);
      // One command with the content on stdin: no SFTP session to open on the critical path.
      const config = routeConfig({ ...spec, name: this.name });
      await Promise.all([
        this.conn.exec(docker.writeFileAtomically(file, config), { stdin: config }),
        ...(certificate ? [] : [this.conn.exec(docker.removePaths([certs]))]),
      ]);
    } else await this.conn.exec(docker.removePaths([file, certs]));
    const want = [...(spec.servers.length ? writtenServers(spec) : [])].sort().join(" ");
    const elapsed = this.conn.stopwatch();
    const limit = ROUTE_DEADLINE_MS;
    for (;;) {
      const now = await this.servers("file");
      if (now !== undefined && [...now].sort().join(" ") === want) return;
      if (elapsed() > limit) {
        throw new Error(`Traefik did not apply the route of ${this.name} (${spec.servers.join(", ") || "removed"}) within ${ROUTE_DEADLINE_MS / 1000}s`);
      }
      await sleep(50);
    }
  }

  /** Labels: waits until Traefik routes (present) or no longer routes (!present) to the
   * container, as its Docker provider sees it. */
  async waitLabelRouted(container: string, present: boolean): Promise<void> {
    const ip = (await this.conn.exec(docker.containerIp(container))).stdout.trim().split(" ")[0];
    const elapsed = this.conn.stopwatch();
    const limit = ROUTE_DEADLINE_MS;
    for (;;) {
      const servers = await this.servers("docker");
      if (servers === undefined && this.facts.apiPort === undefined) {
        // No API to ask: Traefik applies a health change after its provider throttle.
        await sleep(3000);
        return;
      }
      const routed = servers?.some((u) => hostOf(u) === ip);
      if (servers !== undefined && routed === present) return;
      if (elapsed() > limit) {
        if (present) throw new Error(`Traefik did not start routing to ${container} (${ip}) within ${ROUTE_DEADLINE_MS / 1000}s`);
        // Never stop a container Traefik may still send requests to.
        throw new Error(`Traefik still routes to ${container} (${ip}) ${ROUTE_DEADLINE_MS / 1000}s after its cord was cut, or its API gave no definite answer; ${container} was left running (the next \`pulumi up\` retires it)`);
      }
      await sleep(100);
    }
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return "";
  }
}

/**
 * Kamal 2's `proxy.run` (kamal-proxy's own container) applied to the Traefik that serves here,
 * key by key as Kamal's Proxy::Run reads them: the HTTP and HTTPS ports published on each of
 * `bind_ips` (container ports 80 and 443), `log_max_size` as Docker's log option, `debug` as
 * Traefik's log level, `metrics_port` as a Prometheus entrypoint exposed to the containers'
 * network, `options` as the container's. kamal-proxy's image keys are said, not applied;
 * `publish: false` is refused (this Traefik publishes its entrypoints).
 */
import type { ConfigProblem } from "../provider/config/errors";
import type { KamalConfig } from "./model";
import type { proxy } from "./schema";
import type { z } from "zod";

type Traefik = NonNullable<KamalConfig["traefik"]>;
type Run = NonNullable<z.output<typeof proxy>["run"]>;

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The published ports of one container port on each bind address ("ip:host:container"). */
function publishes(bindIps: string[] | undefined, hostPort: number, containerPort: number): string[] {
  return (bindIps ?? [undefined]).map((ip) => [ip === undefined ? undefined : ip.includes(":") ? `[${ip}]` : ip, hostPort, containerPort].filter((x) => x !== undefined).join(":"));
}

export function applyProxyRun(traefik: Traefik, run: Run, problems: ConfigProblem[], warnings: string[]): void {
  const at = "proxy.run";
  for (const key of ["registry", "repository", "version"] as const) {
    if (run[key] !== undefined) warnings.push(`${at}.${key}: not applied (kamal-proxy's image; the Traefik here is KamalApp's traefikImage)`);
  }
  if (run.publish === false) {
    problems.push({ path: `${at}.publish`, message: "false is not supported: the Traefik here publishes its entrypoints on the host (set http_port and bind_ips to keep it off public addresses)" });
    return;
  }
  const extra: string[] = [];
  // The first bind address is the web entrypoint's own port (a change to it is a handover);
  // the others are published beside it, as Kamal's one --publish per address.
  const http = publishes(run.bind_ips, run.http_port ?? 80, 80);
  if (run.http_port !== undefined || run.bind_ips) {
    const [first, ...rest] = http;
    const plain = run.bind_ips === undefined || IPV4.test(run.bind_ips[0]);
    traefik.hostPort = plain ? (run.bind_ips ? first : (run.http_port ?? 80)) : 80;
    if (!plain) problems.push({ path: `${at}.bind_ips`, message: "the first address must be an IPv4 address (the web entrypoint's); IPv6 ones may follow it" });
    extra.push(...rest);
  }
  if (traefik.tls && (run.https_port !== undefined || run.bind_ips)) {
    const [first, ...rest] = publishes(run.bind_ips, run.https_port ?? 443, 443);
    traefik.tls.hostPort = run.bind_ips ? first.replace(/:443$/, "") : (run.https_port ?? 443);
    extra.push(...rest);
  }
  const options: Traefik["options"] = { ...traefik.options, ...(run.options ?? {}) };
  if (extra.length) options.publish = [...[options.publish ?? []].flat().filter((v): v is string | number => typeof v !== "boolean"), ...extra];
  if (run.log_max_size !== undefined) options["log-opt"] = `max-size=${run.log_max_size}`;
  if (run.metrics_port !== undefined) {
    options.expose = run.metrics_port;
    Object.assign(traefik.args, { "metrics.prometheus": true, "metrics.prometheus.entryPoint": "metrics", "entryPoints.metrics.address": `:${run.metrics_port}` });
  }
  if (run.debug) traefik.args["log.level"] = "DEBUG";
  traefik.options = options;
}

/** Kamal 2's `proxy.logging` (the top-level one and the roles'): Traefik's access log in JSON,
 * keeping the request and response headers they name (a host's Traefik logs for every app on
 * it, so the names are the union of all of them). */
export function applyProxyLogging(traefik: Traefik, logging: { request_headers?: string[]; response_headers?: string[] }[]): void {
  if (!logging.length) return;
  const headers = [...new Set(logging.flatMap((l) => [...(l.request_headers ?? []), ...(l.response_headers ?? [])]))].sort();
  Object.assign(traefik.args, { accesslog: true, "accesslog.format": "json", "accesslog.fields.headers.defaultMode": "drop" });
  for (const h of headers) traefik.args[`accesslog.fields.headers.names.${h}`] = "keep";
}

import { Command } from "./command";
import { PLUGIN_NAME } from "./traefikPlugin";

/**
 * Routing through Traefik's file provider: each scope (service, role, destination) owns one
 * dynamic-configuration file in a directory Traefik watches. Writing the file (atomically)
 * moves traffic in one step, as kamal-proxy's deploy does: no waiting for Docker's health
 * schedule or for a cut cord to turn a container unhealthy. Pure: contents and paths only.
 */

/** The directory inside the Traefik container that holds the scopes' route files. */
export const ROUTES_IN_TRAEFIK = "/etc/traefik/kamal";

/** Where the route files live on the host, in the proxy directory (traefikDirs). */
export const ROUTES_IN_PROXY = "traefik";

/** The route file of a scope (`service-role[-destination]`). */
export function routeFile(dir: string, scope: string): string {
  return `${dir}/${scope}.yml`;
}

export interface RouteSpec {
  /** Router, service and middleware name: the scope. */
  name: string;
  /** The host-name part of the rule (hostRule). */
  rule: string;
  /** Served only under these path prefixes. */
  pathPrefixes?: readonly string[];
  /** The prefix is removed before the request reaches the app. */
  stripPathPrefix?: boolean;
  /** Entrypoints of the plain router; none: every entrypoint but Traefik's own API one, as
   * Kamal 1's labels (whatever the web entrypoint is called: `http`, or `web` in the Let's
   * Encrypt recipe). */
  entrypoints?: string[];
  /** Backend URLs, e.g. "http://172.17.0.5:3000": the containers that serve. */
  servers: string[];
  /** HTTPS: a second router on the TLS entrypoint, the plain one on the web entrypoint. */
  https?: {
    web: string;
    secure: string;
    /** The ACME resolver that issues the certificate; none: one of the store's (the scope's
     * own certificate, see tlsConfig). */
    certResolver?: string;
    /** Plain HTTP requests are redirected to HTTPS. */
    redirect: boolean;
  };
  /** Seconds until a response that has not begun is answered with 504. */
  responseTimeout?: number;
  buffering?: { maxRequestBody?: number; maxResponseBody?: number; memory: number };
  /** The client's X-Forwarded-* headers are replaced by what Traefik saw (a Traefik that
   * trusts them, a role that must not see them), by the plugin. */
  stripForwardedHeaders?: boolean;
  /** Maintenance: Traefik answers 503 with this page (by the plugin; on a Traefik without
   * it, Traefik's own 503 from a load balancer with no server). */
  maintenance?: { page: string; plugin: boolean };
  /** Pages served in place of the errors Traefik itself answers with (proxyErrorPages): Traefik's
   * `errors` middleware asks Traefik itself (`at`, its web entrypoint from inside its own
   * network namespace) for the page, which a route of the scope answers by the plugin. */
  errorPages?: { pages: Record<string, string>; at: string; entrypoint: string };
}

/** The statuses Traefik answers with itself when a container cannot be reached (502) or
 * does not answer in time (504): the errors kamal-proxy serves its error pages for. An app's
 * own 404 or 500 is the app's (Traefik's errors middleware cannot tell the two apart). */
const PROXY_ERRORS: readonly string[] = ["502", "504"];

/** The pages of `pages` that replace Traefik's own errors (PROXY_ERRORS), by status. */
export function proxyErrorPages(pages: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(pages ?? {}).filter(([s]) => PROXY_ERRORS.includes(s)).sort(([a], [b]) => a.localeCompare(b)));
}

/** Where a scope's error page is asked for on Traefik itself. */
function pagePath(scope: string, status: string): string {
  return `/.kamal-pages/${scope}/${status}`;
}


/** Traefik's rule for host names and path prefixes. */
export function fullRule(rule: string, pathPrefixes: readonly string[] = []): string {
  if (!pathPrefixes.length) return rule;
  const prefixes = pathPrefixes.map((p) => `PathPrefix(\`${p}\`)`).join(" || ");
  return rule === "PathPrefix(`/`)" ? prefixes : `(${rule}) && (${pathPrefixes.length > 1 ? `(${prefixes})` : prefixes})`;
}

type Json = Record<string, unknown>;

/**
 * The dynamic configuration of one scope (JSON, which is YAML, so Traefik reads the `.yml`
 * file as is): its routers (a plain one, and an HTTPS one with ssl), Kamal's retry and the
 * scope's own middlewares, one load balancer of the serving containers.
 */
export function routeConfig(spec: RouteSpec): string {
  const n = spec.name;
  const middlewares: Json = { [`${n}-retry`]: { retry: { attempts: 5, initialInterval: "500ms" } } };
  // In request order: path prefix, forwarded headers, buffering, then retries nearest the app.
  const common: string[] = [];
  const pageRouters: Json = {};
  const services: Json = {};
  // Outermost: every error Traefik answers with below it is seen there.
  const pages = Object.entries(proxyErrorPages(spec.errorPages?.pages));
  if (spec.errorPages && pages.length) {
    middlewares[`${n}-pages`] = { errors: { status: pages.map(([s]) => s), service: `${n}-pages`, query: pagePath(n, "{status}") } };
    common.push(`${n}-pages`);
    services[`${n}-pages`] = { loadBalancer: { passHostHeader: false, servers: [{ url: spec.errorPages.at }] } };
    for (const [status, page] of pages) {
      middlewares[`${n}-page-${status}`] = { plugin: { [PLUGIN_NAME]: { mode: "respond", status: 200, body: page, contentType: "text/html; charset=utf-8" } } };
      // Only Traefik itself (the errors middleware's request) is answered; no host name.
      pageRouters[`${n}-page-${status}`] = { rule: `ClientIP(\`127.0.0.1\`) && Path(\`${pagePath(n, status)}\`)`, entryPoints: [spec.errorPages.entrypoint], service: "noop@internal", middlewares: [`${n}-page-${status}`] };
    }
  }
  if (spec.pathPrefixes?.length && spec.stripPathPrefix !== false) {
    middlewares[`${n}-strip-prefix`] = { stripPrefix: { prefixes: [...spec.pathPrefixes] } };
    common.push(`${n}-strip-prefix`);
  }
  if (spec.stripForwardedHeaders) {
    // The plugin sets them from what Traefik saw (commands/traefikPlugin.ts).
    middlewares[`${n}-forwarded`] = { plugin: { [PLUGIN_NAME]: { mode: "forwarded" } } };
    common.push(`${n}-forwarded`);
  }
  const tail: string[] = [];
  if (spec.buffering) {
    const b = spec.buffering;
    middlewares[`${n}-buffering`] = {
      buffering: {
        ...(b.maxRequestBody ? { maxRequestBodyBytes: b.maxRequestBody } : {}),
        memRequestBodyBytes: b.memory,
        ...(b.maxResponseBody ? { maxResponseBodyBytes: b.maxResponseBody } : {}),
        memResponseBodyBytes: b.memory,
      },
    };
    tail.push(`${n}-buffering`);
  }
  tail.push(`${n}-retry`);
  let servers = spec.servers;
  let serving = () => [...common, ...tail];
  if (spec.maintenance) {
    if (spec.maintenance.plugin) {
      middlewares[`${n}-maintenance`] = { plugin: { [PLUGIN_NAME]: { mode: "respond", status: 503, body: spec.maintenance.page, contentType: "text/html; charset=utf-8" } } };
      serving = () => [`${n}-maintenance`];
    } else {
      // No server: Traefik itself answers 503 Service Unavailable.
      servers = [];
      serving = () => [];
    }
  }

  const rule = fullRule(spec.rule, spec.pathPrefixes);
  const routers: Json = {};
  if (spec.https) {
    const h = spec.https;
    if (h.redirect) {
      middlewares[`${n}-https-redirect`] = { redirectScheme: { scheme: "https", permanent: true } };
      routers[n] = { rule, entryPoints: [h.web], service: n, middlewares: [`${n}-https-redirect`] };
    } else {
      routers[n] = { rule, entryPoints: [h.web], service: n, middlewares: serving() };
    }
    routers[`${n}-https`] = { rule, entryPoints: [h.secure], service: n, middlewares: serving(), tls: h.certResolver ? { certResolver: h.certResolver } : {} };
  } else {
    routers[n] = { rule, ...(spec.entrypoints?.length ? { entryPoints: spec.entrypoints } : {}), service: n, middlewares: serving() };
  }
  for (const r of Object.values(routers) as Json[]) if (!(r.middlewares as string[]).length) delete r.middlewares;
  Object.assign(routers, pageRouters);

  const http: Json = {
    routers,
    middlewares,
    services: {
      [n]: { loadBalancer: { passHostHeader: true, servers: servers.map((url) => ({ url })), ...(spec.responseTimeout ? { serversTransport: n } : {}) } },
      ...services,
    },
  };
  if (spec.responseTimeout) http.serversTransports = { [n]: { forwardingTimeouts: { responseHeaderTimeout: `${spec.responseTimeout}s` } } };
  return `${JSON.stringify({ http }, null, 2)}\n`;
}

/** The file beside a scope's route file that holds its own certificate and key (mode 0600;
 * `@` never occurs in a scope's name). */
export function tlsFile(dir: string, scope: string): string {
  return `${dir}/${scope}@tls.yml`;
}

/** A scope's own certificates, in Traefik's certificate store (matched by SNI). The PEM text
 * is inline: Traefik reads a certFile/keyFile that is not a path as the content itself. */
export function tlsConfig(...pairs: { certificatePem: string; privateKeyPem: string }[]): string {
  return `${JSON.stringify({ tls: { certificates: pairs.map((p) => ({ certFile: p.certificatePem, keyFile: p.privateKeyPem })) } }, null, 2)}\n`;
}

/** The routers a route file defines (to check that a Traefik has loaded them). */
export function routeRouters(text: string): string[] {
  try {
    return Object.keys((JSON.parse(text) as { http?: { routers?: Json } }).http?.routers ?? {});
  } catch {
    return [];
  }
}

/** The rules of a route file's routers. */
export function routeRules(text: string): string[] {
  try {
    const routers = (JSON.parse(text) as { http?: { routers?: Record<string, { rule?: unknown }> } }).http?.routers ?? {};
    return Object.values(routers).flatMap((r) => (typeof r?.rule === "string" ? [r.rule] : []));
  } catch {
    return [];
  }
}

/** The host names a Traefik rule matches by name: `Host(\`a\`, \`b\`)` (Traefik 2) and
 * `Host(\`a\`) || Host(\`b\`)` (Traefik 3); not regexps. */
export function ruleHosts(rule: string): string[] {
  const out: string[] = [];
  for (const m of rule.matchAll(/\bHost\(([^)]*)\)/g)) {
    for (const n of m[1].matchAll(/[`"]([^`"]+)[`"]/g)) out.push(n[1].toLowerCase());
  }
  return out;
}

/** The servers a route file's spec writes (a maintenance without the plugin writes none). */
export function writtenServers(spec: Pick<RouteSpec, "servers" | "maintenance">): string[] {
  return spec.maintenance && !spec.maintenance.plugin ? [] : spec.servers;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** The default maintenance page: `{{ .Message }}` where the message goes. */
export const DEFAULT_MAINTENANCE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>503 Service Unavailable</title>
<style>body{margin:0;min-height:100vh;display:grid;place-items:center;font:1.25rem/1.5 system-ui,sans-serif;background:#f4f4f5;color:#18181b}main{max-width:32rem;padding:2rem;text-align:center}h1{font-size:1.5rem}</style>
</head>
<body>
<main>
<h1>Down for maintenance</h1>
{{ if .Message }}<p>{{ .Message }}</p>{{ else }}<p>This service is being worked on and will be back shortly.</p>{{ end }}
</main>
</body>
</html>
`;

/**
 * A maintenance page with its message in place: the user's page or the default, where
 * `{{ .Message }}` (and `{{ if .Message }}…{{ else }}…{{ end }}`, as in kamal-proxy's pages)
 * take the message, HTML-escaped.
 */
export function maintenancePage(m: { message?: string; page?: string }): string {
  const message = m.message ?? "";
  return (m.page ?? DEFAULT_MAINTENANCE_PAGE)
    .replace(/\{\{-?\s*if\s+\.Message\s*-?\}\}([\s\S]*?)(?:\{\{-?\s*else\s*-?\}\}([\s\S]*?))?\{\{-?\s*end\s*-?\}\}/g, (_, yes: string, no?: string) => (message ? yes : (no ?? "")))
    .replace(/\{\{-?\s*\.Message\s*-?\}\}/g, escapeHtml(message));
}

/** The backend URLs a route file names (undefined when it is not one of ours). */
export function routeServers(text: string, name: string): string[] | undefined {
  try {
    const config = JSON.parse(text) as { http?: { services?: Record<string, { loadBalancer?: { servers?: { url?: string }[] } }> } };
    return config.http?.services?.[name]?.loadBalancer?.servers?.map((s) => s.url ?? "");
  } catch {
    return undefined;
  }
}

/** The route files in a routes directory (certificate files, `…@…`, left out). */
export function listRouteFiles(dir: string): Command {
  return Command.read(["find", dir, "-maxdepth", "1", "-name", "*.yml", "!", "-name", "*@*"], { engine: false });
}

/** Every route file's `"rule"` lines, each prefixed by its file name (grep -H). */
export function routeFileRules(dir: string): Command {
  return Command.read(["find", dir, "-maxdepth", "1", "-name", "*.yml", "-exec", "grep", "-H", '"rule"', "{}", "+"], { engine: false });
}

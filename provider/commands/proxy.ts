/**
 * Routing through Traefik's file provider: each scope (service, role, destination) owns one
 * dynamic-configuration file in a directory Traefik watches. Writing the file (atomically)
 * moves traffic in one step, as kamal-proxy's deploy does: no waiting for Docker's health
 * schedule or for a cut cord to turn a container unhealthy. Pure: contents and paths only.
 */

/** The directory inside the Traefik container that holds the scopes' route files. */
export const ROUTES_IN_TRAEFIK = "/etc/traefik/kamal";

/** Where the route files live on the host, under the SSH user's home (Kamal's .kamal). */
export const ROUTES_ON_HOST = ".kamal/proxy/traefik";

/** The route file of a scope (`service-role[-destination]`). */
export function routeFile(dir: string, scope: string): string {
  return `${dir}/${scope}.yml`;
}

export interface RouteSpec {
  /** Router, service and middleware name: the scope. */
  name: string;
  rule: string;
  /** Entrypoints; none: every entrypoint but Traefik's own API one, as Kamal 1's labels
   * (whatever the web entrypoint is called: `http`, or `web` in the Let's Encrypt recipe). */
  entrypoints?: string[];
  /** Backend URLs, e.g. "http://172.17.0.5:3000": the containers that serve. */
  servers: string[];
}

/**
 * The dynamic configuration of one scope (JSON, which is YAML, so Traefik reads the `.yml`
 * file as is): one router, Kamal's retry middleware, one load balancer of the serving
 * containers.
 */
export function routeConfig(spec: RouteSpec): string {
  const config = {
    http: {
      routers: {
        [spec.name]: { rule: spec.rule, ...(spec.entrypoints?.length ? { entryPoints: spec.entrypoints } : {}), service: spec.name, middlewares: [`${spec.name}-retry`] },
      },
      middlewares: {
        [`${spec.name}-retry`]: { retry: { attempts: 5, initialInterval: "500ms" } },
      },
      services: {
        [spec.name]: { loadBalancer: { passHostHeader: true, servers: spec.servers.map((url) => ({ url })) } },
      },
    },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
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

/**
 * deploy.yml, as the loader normalized it (kamal/model.ts), to the components' arguments: one
 * function per component, each a table from the file's keys to the component's args, so that
 * where a key lands is read here and only here. KamalApp (kamal.ts) decides which components
 * exist and in what order; nothing here creates a resource or reads a file.
 *
 * What cannot be known from the file alone comes in the context: how a secret's value is found,
 * a host's connection, the registry's credentials.
 */
import * as pulumi from "@pulumi/pulumi";
import type { AcmeInput } from "../provider/config/schemas";
import type { ResourceInputs } from "../provider/resources";
import { secretEnvName, type KamalAccessory, type KamalConfig, type KamalEnv, type KamalRole, type KamalRoute } from "../kamal/model";
import type { AccessoryArgs } from "./accessory";
import { dropUndefined, type EnvArgs, type HostArg, type RegistryArgs, type SshArgs } from "./common";
import type { ImageArgs } from "./image";
import type { ProxyRouteArgs, RoleArgs, ServiceArgs } from "./serviceArgs";
import type { TraefikArgs } from "./traefik";

/** A secret's value by name; `at` is the config path that names it (for the error). */
export type Resolve = (name: string, at: string) => pulumi.Input<string>;

/** What the mapping needs besides the file. */
export interface KamalContext {
  secret: Resolve;
  /** A host as deploy.yml names it (with its env, for a role's host). */
  host: (address: string, env?: KamalEnv) => HostArg;
  ssh: SshArgs;
  /** A registry's credentials, its username and password resolved. */
  credentials: (r: NonNullable<KamalConfig["registry"]>) => pulumi.Input<RegistryArgs>;
  /** An accessory file's content: the file's, or its ERB rendered with the accessory's env. */
  fileContent: (f: KamalAccessory["files"][number], a: KamalAccessory) => pulumi.Input<string>;
}

/** The registry an image is pulled from: deploy.yml's, when the image names its server. */
function registryFor(cfg: KamalConfig, cx: KamalContext, image: pulumi.Input<string>): pulumi.Input<RegistryArgs> | undefined {
  if (!cfg.registry) return undefined;
  if (typeof image !== "string") return cx.credentials(cfg.registry);
  return image.startsWith(`${cfg.registry.server}/`) ? cx.credentials(cfg.registry) : undefined;
}

/** Every host of a role behind the proxy, and of an accessory behind it (Kamal 2). */
export function proxiedHosts(cfg: KamalConfig): string[] {
  return [...new Set([...cfg.roles.filter((r) => r.traefik).flatMap((r) => r.hosts.map((h) => h.address)), ...cfg.accessories.filter((a) => a.proxy).flatMap((a) => a.hosts)])];
}

/** `traefik:` (Kamal 1) or `proxy:` (Kamal 2) as the Traefik's. */
export function traefikArgs(cfg: KamalConfig, cx: KamalContext, o: { image?: pulumi.Input<string>; acme?: pulumi.Input<ResourceInputs<AcmeInput>> }): TraefikArgs {
  const t = cfg.traefik!;
  const image = o.image ?? t.image;
  return {
    hosts: proxiedHosts(cfg).map((a) => cx.host(a)),
    ssh: cx.ssh,
    image, //                                      traefik.image (Kamal 1), KamalApp's traefikImage
    registry: registryFor(cfg, cx, image),
    hostPort: t.hostPort, //                       traefik.host_port, proxy.run.http_port
    args: t.args, //                               traefik.args, proxy.run (kamal/proxyRun.ts)
    labels: t.labels, //                           traefik.labels
    options: t.options, //                         traefik.options, proxy.run.options
    env: envArgs(t.env, cx.secret), //             traefik.env
    networks: t.networks, //                       Kamal 2: the `kamal` network
    // A role's proxy.ssl: Let's Encrypt (ssl: true) or the roles' own certificates.
    tls: t.tls ? tlsArgs(t.tls, o.acme) : undefined,
    forwardedHeaders: t.forwardedHeaders, //       proxy.forward_headers
    lockService: cfg.service,
    destination: cfg.destination,
    runDirectory: cfg.runDirectory, //             run_directory
  };
}

/** HTTPS on the Traefik: the ACME settings KamalApp was given, when a role uses Let's Encrypt. */
function tlsArgs(tls: NonNullable<NonNullable<KamalConfig["traefik"]>["tls"]>, acme: pulumi.Input<ResourceInputs<AcmeInput>> | undefined): TraefikArgs["tls"] {
  const port = tls.hostPort !== undefined ? { hostPort: tls.hostPort } : {};
  if (!tls.acme) return port;
  return pulumi.Output.isInstance(acme) || acme instanceof Promise ? pulumi.output(acme).apply((a) => ({ acme: a, ...port })) : { acme: acme ?? {}, ...port };
}

/** `accessories.<name>` as an Accessory; `hold`: left as it runs (Kamal's deploy). */
export function accessoryArgs(cfg: KamalConfig, a: KamalAccessory, cx: KamalContext, hold: boolean): AccessoryArgs {
  return {
    hold,
    service: cfg.service,
    destination: cfg.destination,
    runDirectory: cfg.runDirectory, //             run_directory
    name: a.name,
    containerName: a.containerName, //             accessories.<name>.service
    image: a.image, //                             .image
    hosts: a.hosts.map((h) => cx.host(h)), //      .host, .hosts, .role, .roles, .tag, .tags
    ssh: cx.ssh,
    registry: a.registry ? cx.credentials(a.registry) : registryFor(cfg, cx, a.image), // .registry
    port: a.port, //                               .port
    cmd: a.cmd, //                                 .cmd
    env: envArgs(a.env, cx.secret), //             .env
    files: a.files.map((f) => ({ //                .files (an .erb one rendered)
      target: f.target,
      content: cx.fileContent(f, a),
      ...(f.options ? { options: f.options } : {}),
      ...(f.mode ? { mode: f.mode } : {}),
      ...(f.owner ? { owner: f.owner } : {}),
    })),
    directories: a.directories, //                 .directories
    volumes: a.volumes, //                         .volumes
    options: a.options, //                         .options
    labels: a.labels, //                           .labels
    proxy: a.proxy ? { hosts: a.proxy.hosts, appPort: a.proxy.appPort, ...routeArgs(a.proxy.route, cx.secret), ...(a.proxy.healthcheck ? { healthcheck: a.proxy.healthcheck } : {}) } : undefined, // .proxy
  };
}

/** `servers.<role>` as the Service's role. */
export function roleArgs(r: KamalRole, cx: KamalContext): RoleArgs {
  return {
    // Role and tag env are already merged per host by the loader.
    hosts: r.hosts.map((h) => cx.host(h.address, h.env)), // servers.<role>.hosts (tags: env)
    assetPath: r.assetPath, //                     asset_path
    cmd: r.cmd, //                                 .cmd
    labels: r.labels, //                           labels, .labels
    options: r.options, //                         .options
    traefik: r.traefik, //                         .traefik (Kamal 1), .proxy (Kamal 2)
    appPort: r.appPort, //                         proxy.app_port, healthcheck.port
    healthcheck: r.healthcheck ?? false, //        healthcheck, proxy.healthcheck
    logging: r.logging, //                         logging, .logging
    stopWaitTime: r.stopWaitTime, //               stop_wait_time, .stop_timeout
    proxy: r.route || r.routeHosts.length ? { ...(r.routeHosts.length ? { hosts: r.routeHosts } : {}), ...(r.route ? routeArgs(r.route, cx.secret) : {}) } : undefined, // proxy.host, .hosts, …
  };
}

/** The file's service-wide keys as the Service's; `deployed`: the image (built here, or
 * `image:version`) and what KamalApp adds that Kamal has no key for. */
export function serviceArgs(
  cfg: KamalConfig,
  cx: KamalContext,
  deployed: Pick<ServiceArgs, "image" | "version" | "release" | "watch" | "canary" | "onFailure" | "maintenance">,
): ServiceArgs {
  return {
    service: cfg.service, //                       service
    ...deployed, //                                image, version
    destination: cfg.destination, //               -d
    registry: cfg.registry ? cx.credentials(cfg.registry) : undefined, // registry
    ssh: cx.ssh, //                                ssh, sshkit
    roles: Object.fromEntries(cfg.roles.map((r) => [r.name, roleArgs(r, cx)])), // servers
    volumes: cfg.volumes, //                       volumes
    stopWaitTime: cfg.stopWaitTime, //             stop_wait_time
    retainContainers: cfg.retainContainers, //     retain_containers
    primaryRole: cfg.primaryRole, //               primary_role
    bootLimit: cfg.boot.limit as number | `${number}%` | undefined, // boot.limit
    bootWait: cfg.boot.wait, //                    boot.wait
    parallelRoles: cfg.boot.parallelRoles, //      boot.parallel_roles
    readinessDelay: cfg.readinessDelay, //         readiness_delay
    maintenancePage: cfg.maintenancePage, //       error_pages_path (503.html)
    errorPages: cfg.errorPages, //                 error_pages_path (4??.html, 5??.html)
    runDirectory: cfg.runDirectory, //             run_directory
  };
}

/** `builder:` as the Image; `remote`'s SSH user and port from its URI. */
export function imageArgs(cfg: KamalConfig, cx: KamalContext, o: { version: pulumi.Input<string>; appRoot: string }): ImageArgs {
  const b = cfg.builder;
  return {
    repository: cfg.image, //                      image (with registry.server)
    version: o.version,
    service: cfg.service,
    destination: cfg.destination,
    appRoot: o.appRoot,
    context: b.context, //                         builder.context
    dockerfile: b.dockerfile, //                   builder.dockerfile
    target: b.target, //                           builder.target
    args: b.args, //                               builder.args
    secrets: Object.fromEntries(b.secrets.map((n) => [n, cx.secret(n, "builder.secrets")])), // builder.secrets
    ssh: b.ssh, //                                 builder.ssh
    platforms: b.platforms, //                     builder.arch
    driver: b.driver, //                           builder.driver
    remote: b.remote ? { host: cx.host(b.remote.host), ssh: { ...cx.ssh, user: b.remote.user, ...(b.remote.port ? { port: b.remote.port } : {}) } } : undefined, // builder.remote
    local: b.local, //                             builder.local
    cache: b.cache, //                             builder.cache
    provenance: b.provenance, //                   builder.provenance
    sbom: b.sbom, //                               builder.sbom
    // A registry on localhost needs no login.
    registry: cfg.image.startsWith("localhost:") || !cfg.registry ? undefined : cx.credentials(cfg.registry), // registry
  };
}

/** A role's Kamal 2 proxy settings as the Service's; a certificate and key from their secrets. */
export function routeArgs(r: KamalRoute, secret: Resolve): ProxyRouteArgs {
  return dropUndefined({
    ssl: typeof r.ssl === "object" ? { certificatePem: secret(r.ssl.certificatePem, "proxy.ssl.certificate_pem"), privateKeyPem: secret(r.ssl.privateKeyPem, "proxy.ssl.private_key_pem") } : r.ssl,
    sslRedirect: r.sslRedirect,
    pathPrefixes: r.pathPrefixes.length ? r.pathPrefixes : undefined,
    stripPathPrefix: r.stripPathPrefix,
    responseTimeout: r.responseTimeout,
    buffering: r.buffering ? dropUndefined(r.buffering) : undefined,
    forwardHeaders: r.forwardHeaders,
  });
}

/** `env:` as the components' env: clear values, and each secret by the name it is set as
 * ("NAME:SECRET" sets NAME from the secret SECRET, Kamal 2's aliases). */
export function envArgs(env: KamalEnv, secret: Resolve): EnvArgs {
  return {
    clear: env.clear,
    secret: Object.fromEntries(env.secret.map(secretEnvName).map(({ name, secret: key }) => [name, secret(key, "env.secret")])),
  };
}

/**
 * What a loaded deploy.yml is: the normalized description KamalApp turns into components
 * (roles, routes, accessories, env by name, secrets by reference), and the view `kamal
 * config` prints.
 */
import type { KamalBuilder } from "./builder";

/** A value that is either given or named as a secret. */
export type ValueRef = { value: string } | { secret: string };

export interface KamalEnv {
  clear: Record<string, string>;
  /** Names of secrets, resolved by the component. */
  secret: string[];
}

export interface KamalHost {
  address: string;
  tags: string[];
  /** This host's env: the role's, with its tags' env over it. */
  env: KamalEnv;
}

export interface KamalRole {
  name: string;
  hosts: KamalHost[];
  cmd?: string | string[];
  options: Record<string, string | number | boolean | (string | number)[]>;
  labels: Record<string, string>;
  /** Behind the proxy (Traefik here): Kamal 1's traefik, Kamal 2's proxy. */
  traefik: boolean;
  appPort: number;
  healthcheck?: { path: string; port: number; cmd?: string; interval: number; timeout?: number; deadline: number; logLines?: number; cord?: string | false };
  /** Kamal 2's proxy.host/hosts: the host names routed to the role (all when empty). */
  routeHosts: string[];
  /** Kamal 2's other proxy settings, as the Service's route settings (secrets by name). */
  route?: KamalRoute;
  /** Kamal 2's role stop_timeout. */
  stopWaitTime?: number;
  logging?: { driver?: string; options?: Record<string, string> };
  /** asset_path (the role's, else the top-level one), for a role behind the proxy. */
  assetPath?: string;
}

/** How a Kamal 2 role is served (its proxy settings, with Kamal's defaults applied). */
export interface KamalRoute {
  ssl: boolean | { certificatePem: string; privateKeyPem: string };
  sslRedirect?: boolean;
  pathPrefixes: string[];
  stripPathPrefix?: boolean;
  responseTimeout: number;
  buffering?: { maxRequestBody?: number; maxResponseBody?: number; memory?: number };
  forwardHeaders: boolean;
}

export interface KamalAccessory {
  name: string;
  /** Container name (Kamal: accessory `service`, or "<service>-<name>"). */
  containerName: string;
  image: string;
  hosts: string[];
  port?: number | string;
  cmd?: string | string[];
  env: KamalEnv;
  /** Local files; one whose name ends in "erb" is a template Kamal renders with the
   * accessory's env and secrets (KamalApp does, once the secrets are known). */
  files: { source: string; target: string; content: string; template: boolean; options?: string; mode?: string; owner?: string }[];
  /** "host_dir:/container/path[:options]", with the host directory's mode and owner when given. */
  directories: (string | { path: string; mode?: string; owner?: string })[];
  volumes: string[];
  options: Record<string, string | number | boolean | (string | number)[]>;
  labels: Record<string, string>;
  /** Its own registry (Kamal 2), with the credentials to pull its image. */
  registry?: { server: string; username: ValueRef; password: ValueRef };
  /** Kamal 2's accessory `proxy`: routed by these host names to the container's app_port. */
  proxy?: { hosts: string[]; appPort: number; route: KamalRoute; healthcheck?: { path: string; interval: number; timeout: number; deadline: number } };
}

export interface KamalConfig {
  service: string;
  /** Repository with the registry server in front, as Kamal pulls it. */
  image: string;
  destination?: string;
  registry?: { server: string; username: ValueRef; password: ValueRef };
  /** `key_data`: private keys themselves (secret material: never printed). */
  ssh: {
    user?: string;
    port?: number;
    proxy?: { host: string; user: string; port?: number };
    keyPaths: string[];
    keyData: KeyData[];
    /** `keys_only`: only these keys, never the agent's identities. */
    keysOnly?: boolean;
    /** `forward_agent`: the local agent forwarded to the hosts' commands. */
    forwardAgent?: boolean;
    /** Host aliases of the SSH config files (`ssh.config`) → the address to connect to. */
    hostNames: Record<string, string>;
    /** `ssh.proxy_command` (or an SSH config file's ProxyCommand). */
    proxyCommand?: string;
    /** `sshkit.max_concurrent_starts`: connections opened at once. */
    maxConcurrentStarts?: number;
  };
  roles: KamalRole[];
  primaryRole: string;
  /** How the image is built (`builder`), for a deploy that builds it (KamalApp's `build`). */
  builder: KamalBuilder;
  /** The Kamal major version the file is written for (see kamalVersionOf). */
  kamal: 1 | 2;
  /** Kamal 2's secrets_path (default .kamal/secrets). */
  secretsPath?: string;
  /** `run_directory`: where the lock, audit log, env files, cords, assets and the proxy's
   * files live on the hosts (unset: `.kamal`). */
  runDirectory?: string;
  env: KamalEnv;
  volumes: string[];
  labels: Record<string, string>;
  traefik?: {
    image: string;
    hostPort?: number | string;
    args: Record<string, string | number | boolean>;
    labels: Record<string, string>;
    options: Record<string, string | number | boolean | (string | number)[]>;
    env: KamalEnv;
    /** Networks Traefik joins: Kamal 2's `kamal`, where the apps run. */
    networks: string[];
    /** HTTPS, when a role has `proxy.ssl` (Let's Encrypt for `ssl: true`), as kamal-proxy;
     * published on `hostPort` (proxy.run's https_port and first bind address; default 443). */
    tls?: { acme?: Record<string, never>; hostPort?: number | string };
    /** Trusts clients' forwarded headers, when a role forwards them (kamal-proxy's default
     * without ssl). */
    forwardedHeaders?: true;
  };
  /** Kamal 2's error_pages_path: its 503.html is the maintenance page. */
  maintenancePage?: string;
  /** Kamal 2's error_pages_path: its `4??.html` and `5??.html` pages by status code, served in
   * place of the proxy's own errors. */
  errorPages?: Record<string, string>;
  /** Where the hooks are, relative to the app root (hooks_path, default .kamal/hooks). */
  hooksPath: string;
  accessories: KamalAccessory[];
  /** `boot`: hosts per batch, seconds between batches, and whether a host's roles boot
   * together (`parallel_roles`, default false: one after another). */
  boot: { limit?: number | string; wait?: number; parallelRoles: boolean };
  stopWaitTime?: number;
  /** Kamal 2's readiness_delay (default 7 there); Kamal 1 has none. */
  readinessDelay?: number;
  retainContainers?: number;
  logging?: { driver?: string; options?: Record<string, string> };
  /** `aliases`: a command name → the Kamal command line it runs (pulumi-kamal runs it too). */
  aliases: Record<string, string>;
  /** Every secret name the config refers to. */
  secretNames: string[];
  /** Keys that were read but have no effect here, with why. */
  warnings: string[];
}

/** A `key_data` entry: the name of a secret holding a private key (Kamal 2.10+), or the key
 * itself (deprecated in Kamal). */
export type KeyData = { secret: string } | SecretText;

/** Secret material read from the file (a private key): shown as "[secret]" by JSON, string
 * conversion and inspection, so a config exported or logged never carries it. */
export class SecretText {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The value itself, for the one place that needs it. */
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return "[secret]";
  }
  toString(): string {
    return "[secret]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[secret]";
  }
}

/** Kamal 2's "NAME:SECRET" (NAME set from the secret SECRET), or "NAME". */
export function secretEnvName(entry: string): { name: string; secret: string } {
  const [name, secret] = entry.split(":", 2);
  return { name, secret: secret ?? name };
}

/** What `kamal config` prints for this file (Kamal's own keys and values: roles, hosts,
 * primary host, repository, image, volumes, ssh, accessories, logging), plus what the
 * deployment here puts behind the proxy, so a user can compare the two side by side. */
export function kamalConfigView(cfg: KamalConfig, version: string) {
  const primary = cfg.roles.find((r) => r.name === cfg.primaryRole);
  const hosts = [...new Set([...cfg.roles.flatMap((r) => r.hosts.map((h) => h.address)), ...cfg.accessories.flatMap((a) => a.hosts)])];
  return {
    roles: cfg.roles.map((r) => r.name),
    hosts,
    primary_host: primary?.hosts[0]?.address,
    version,
    repository: cfg.image,
    absolute_image: `${cfg.image}:${version}`,
    service_with_version: `${cfg.service}-${version}`,
    volume_args: cfg.volumes.flatMap((v) => ["--volume", v]),
    ssh_options: {
      user: cfg.ssh.user ?? "root",
      port: cfg.ssh.port ?? 22,
      ...(cfg.ssh.proxy ? { proxy: `${cfg.ssh.proxy.user}@${cfg.ssh.proxy.host}${cfg.ssh.proxy.port ? `:${cfg.ssh.proxy.port}` : ""}` } : {}),
      ...(cfg.ssh.keyPaths.length ? { keys: cfg.ssh.keyPaths } : {}),
    },
    accessories: Object.fromEntries(cfg.accessories.map((a) => [a.name, { service: a.containerName, image: a.image, hosts: a.hosts }])),
    ...(cfg.logging ? { logging: cfg.logging } : {}),
    // Not in `kamal config`: how this deployment maps the file.
    kamal_version: cfg.kamal,
    destination: cfg.destination,
    proxy_roles: cfg.roles.filter((r) => r.traefik).map((r) => ({ role: r.name, hosts: r.hosts.map((h) => h.address), app_port: r.appPort, route_hosts: r.routeHosts, healthcheck: r.healthcheck })),
  };
}


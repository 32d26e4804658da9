/**
 * Kamal's config/deploy.yml (1.x, and the basics of 2.x's proxy) read into a normalized,
 * validated description that the KamalApp component turns into Service, Traefik and
 * Accessory resources. Pure: files in, data out. Secret values are referenced by name,
 * never read here.
 *
 * Keys that change what runs are supported; keys about building images or the kamal CLI
 * (builder, aliases, …) have no meaning here and come back as warnings, by name; any other
 * key is an error with its path.
 */
import { execSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { ConfigError, problemsFrom, type ConfigProblem } from "../provider/config/errors";
import { builderKamalVersion, builderOf, builderSchema, type KamalBuilder } from "./builder";
import { renderErb } from "./erb";
import { SecretsFiles } from "./secrets";
import { readSshConfig, sshConfigFiles, sshHostConfig, type SshHostConfig } from "./sshConfig";

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);
/** YAML scalars as strings; an empty value (null, as from an empty ERB) is "". */
const scalarMap = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean(), z.null()], { error: "must be a string, number or boolean" }).transform((v) => (v === null ? "" : String(v))),
);
/** Secret env names; Kamal 2's "NAME:SECRET" sets NAME from the secret SECRET. */
const nameList = z.array(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z_][A-Za-z0-9_]*)?$/, { message: 'must be an environment variable name, or "NAME:SECRET_NAME"' }),
);
/** A value or, as a one-element list, the name of a secret holding it (Kamal's convention). */
const valueOrSecret = z.union([scalar, z.array(z.string()).length(1, { message: "must name exactly one secret" })]);

/** An empty value (YAML null, as ERB that printed nothing leaves) counts as absent. */
const orAbsent = <T extends z.ZodType>(t: T) => z.preprocess((v) => (v === null ? undefined : v), t.optional());

const envBlock = z.strictObject({ clear: scalarMap.optional(), secret: nameList.optional() });
const env = z.union([
  z.strictObject({ clear: scalarMap.optional(), secret: nameList.optional(), tags: z.record(z.string(), z.union([envBlock, scalarMap])).optional() }),
  scalarMap,
]);

const duration = z.union([z.number(), z.string().regex(/^\d+(\.\d+)?(ms|s|m)?$/, { message: 'must be seconds or a duration like "10s"' })]);

const healthcheck = z.strictObject({
  path: z.string().optional(),
  port: z.number().int().optional(),
  cmd: z.string().optional(),
  interval: duration.optional(),
  max_attempts: z.number().int().min(1).optional(),
  log_lines: z.number().int().optional(),
  cord: z.union([z.string(), z.literal(false)]).optional(),
  exposed_port: z.number().int().optional(),
});

/** A byte count as Kamal writes it (Ruby's YAML reads 40_000_000 as a number; YAML 1.2 as a string). */
const byteCount = z.union([z.number().int().nonnegative(), z.string().regex(/^\d[\d_]*$/, { message: "must be a number of bytes" }).transform((v) => Number(v.replace(/_/g, "")))]);

const proxy = z.strictObject({
  app_port: z.number().int().optional(),
  host: z.string().optional(),
  hosts: z.array(z.string()).optional(),
  ssl: z.union([z.boolean(), z.strictObject({ certificate_pem: z.string().optional(), private_key_pem: z.string().optional() })]).optional(),
  ssl_redirect: z.boolean().optional(),
  healthcheck: z.strictObject({ path: z.string().optional(), interval: duration.optional(), timeout: duration.optional() }).optional(),
  response_timeout: duration.optional(),
  forward_headers: z.boolean().optional(),
  buffering: z
    .strictObject({ requests: z.boolean().optional(), responses: z.boolean().optional(), max_request_body: byteCount.optional(), max_response_body: byteCount.optional(), memory: byteCount.optional() })
    .optional(),
  logging: z.record(z.string(), z.unknown()).optional(),
  path_prefix: z.string().optional(),
  path_prefixes: z.array(z.string()).optional(),
  strip_path_prefix: z.boolean().optional(),
  run: z.record(z.string(), z.unknown()).optional(),
});

/** A host: "1.2.3.4", or `{ "1.2.3.4": "tag" }` / `{ "1.2.3.4": [tags] }`. */
const hostEntry = z.union([
  z.string(),
  z.record(z.string(), z.union([z.string(), z.array(z.string())])).refine((o) => Object.keys(o).length === 1, {
    message: "must map one host to its tags",
  }),
]);

const logging = z.strictObject({ driver: z.string().optional(), options: scalarMap.optional() });
const options = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]));

const role = z.strictObject({
  hosts: z.array(hostEntry).optional(),
  stop_timeout: z.number().optional(),
  asset_path: z.string().optional(),
  cmd: z.union([z.string(), z.array(z.string())]).optional(),
  options: options.optional(),
  labels: scalarMap.optional(),
  env: env.optional(),
  traefik: z.union([z.boolean(), z.record(z.string(), z.unknown())]).optional(),
  healthcheck: healthcheck.optional(),
  logging: logging.optional(),
  proxy: z.union([z.boolean(), proxy]).optional(),
});

/** Kamal's accessory files and directories: "local:remote[:options]", or
 * `{ local, remote, mode?, owner?, options? }`; normalized to the string form plus a mode. */
const pathConfig = (shape: string) =>
  z.union([
    z.string().regex(/^[^:]+:\/[^:]*(:[a-zA-Z,]+)?$/, { message: `must be "${shape}"` }),
    z.strictObject({ local: z.string(), remote: z.string().startsWith("/"), mode: z.union([z.string(), z.number()]).optional(), owner: z.string().optional(), options: z.string().optional() }),
  ]);

function pathSpec(p: string | { local: string; remote: string; mode?: string | number; options?: string }): { local: string; remote: string; options?: string; mode?: string } {
  if (typeof p !== "string") return { local: p.local, remote: p.remote, options: p.options, mode: p.mode === undefined ? undefined : String(p.mode).padStart(4, "0") };
  const [local, remote, options] = p.split(":");
  return { local, remote, options };
}

/** A registry: the service's, or an accessory's own (Kamal 2). */
const registryConfig = z.strictObject({ server: z.string().optional(), username: orAbsent(valueOrSecret), password: orAbsent(valueOrSecret) });

const accessory = z.strictObject({
  service: z.string().optional(),
  image: z.string(),
  host: z.string().optional(),
  hosts: z.array(z.string()).optional(),
  role: z.string().optional(),
  roles: z.array(z.string()).optional(),
  tag: z.string().optional(),
  tags: z.array(z.string()).optional(),
  port: z.union([z.number().int(), z.string()]).optional(),
  network: z.string().optional(),
  cmd: z.union([z.string(), z.array(z.string())]).optional(),
  env: env.optional(),
  files: z.array(pathConfig("local/path:/path/in/container[:options]")).optional(),
  directories: z.array(pathConfig("host_dir:/path/in/container[:options]")).optional(),
  volumes: z.array(z.string()).optional(),
  options: options.optional(),
  labels: scalarMap.optional(),
  registry: registryConfig.optional(),
  proxy: z.record(z.string(), z.unknown()).optional(),
});

/** Kamal keys about building images or driving the kamal CLI: they change nothing here. */
const NOT_USED: Record<string, string> = {
  aliases: "kamal CLI aliases have no Pulumi equivalent",
  minimum_version: "kamal CLI version check",
  require_destination: "choose the destination in the program",
  sshkit: "SSHKit settings do not apply (ssh2 is used)",
  hooks_output: "a hook's output is always shown, as progress lines",
  output: "kamal CLI output settings",
  run_directory: "the provider keeps its files in ~/.kamal",
};

const root = z.strictObject({
  service: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { message: "must contain only letters, digits, '_', '.', '-'" }),
  image: z.string(),
  servers: z.union([z.array(hostEntry), z.record(z.string(), z.union([z.array(hostEntry), role]))]),
  env: env.optional(),
  registry: registryConfig.optional(),
  ssh: z
    .strictObject({
      user: z.string().optional(),
      port: z.union([z.number().int(), z.string().regex(/^\d+$/, { message: "must be a port number" }).transform(Number)]).optional(),
      proxy: z.string().optional(),
      proxy_command: z.string().optional(),
      keys: z.array(z.string()).optional(),
      key_data: z.array(z.string()).optional(),
      keys_only: z.boolean().optional(),
      log_level: z.string().optional(),
      config: z.union([z.boolean(), z.string(), z.array(z.string())]).optional(),
    })
    .optional(),
  healthcheck: healthcheck.optional(),
  boot: z
    .strictObject({
      limit: z.union([z.number().int().min(1), z.string().regex(/^\d+%?$/, { message: 'must be a number or a percentage like "25%"' })]).optional(),
      wait: z.number().optional(),
      parallel_roles: z.boolean().optional(),
    })
    .optional(),
  stop_wait_time: z.number().optional(),
  retain_containers: z.number().int().min(0).optional(),
  labels: scalarMap.optional(),
  volumes: z.array(z.string()).optional(),
  logging: logging.optional(),
  primary_role: z.string().optional(),
  primary_web_role: z.string().optional(),
  deploy_timeout: z.number().optional(),
  drain_timeout: z.number().optional(),
  stop_timeout: z.number().optional(),
  readiness_delay: z.number().optional(),
  traefik: z
    .strictObject({
      image: z.string().optional(),
      host_port: z.union([z.number().int(), z.string()]).optional(),
      args: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
      labels: scalarMap.optional(),
      options: options.optional(),
      env: env.optional(),
    })
    .optional(),
  proxy: proxy.optional(),
  accessories: z.record(z.string(), accessory).optional(),
  secrets_path: z.string().optional(),
  error_pages_path: z.string().optional(),
  hooks_path: z.string().optional(),
  asset_path: z.string().optional(),
  allow_empty_roles: z.boolean().optional(),
  builder: builderSchema.optional(),
  ...Object.fromEntries(Object.keys(NOT_USED).map((k) => [k, z.unknown().optional()])),
});

type Raw = z.output<typeof root>;

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
  healthcheck?: { path: string; port: number; cmd?: string; interval: number; timeout?: number; deadline: number };
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
  files: { source: string; target: string; content: string; template: boolean; options?: string; mode?: string }[];
  directories: string[];
  volumes: string[];
  options: Record<string, string | number | boolean | (string | number)[]>;
  labels: Record<string, string>;
  /** Its own registry (Kamal 2), with the credentials to pull its image. */
  registry?: { server: string; username: ValueRef; password: ValueRef };
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
    keyData: SecretText[];
    /** Host aliases of the SSH config files (`ssh.config`) → the address to connect to. */
    hostNames: Record<string, string>;
    /** `ssh.proxy_command` (or an SSH config file's ProxyCommand). */
    proxyCommand?: string;
  };
  roles: KamalRole[];
  primaryRole: string;
  /** How the image is built (`builder`), for a deploy that builds it (KamalApp's `build`). */
  builder: KamalBuilder;
  /** The Kamal major version the file is written for (see kamalVersionOf). */
  kamal: 1 | 2;
  /** Kamal 2's secrets_path (default .kamal/secrets). */
  secretsPath?: string;
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
    /** HTTPS, when a role has `proxy.ssl` (Let's Encrypt for `ssl: true`), as kamal-proxy. */
    tls?: { acme?: Record<string, never> };
    /** Trusts clients' forwarded headers, when a role forwards them (kamal-proxy's default
     * without ssl). */
    forwardedHeaders?: true;
  };
  /** Kamal 2's error_pages_path: its 503.html is the maintenance page. */
  maintenancePage?: string;
  /** Where the hooks are, relative to the app root (hooks_path, default .kamal/hooks). */
  hooksPath: string;
  accessories: KamalAccessory[];
  boot: { limit?: number | string; wait?: number };
  stopWaitTime?: number;
  /** Kamal 2's readiness_delay (default 7 there); Kamal 1 has none. */
  readinessDelay?: number;
  retainContainers?: number;
  logging?: { driver?: string; options?: Record<string, string> };
  /** Every secret name the config refers to. */
  secretNames: string[];
  /** Keys that were read but have no effect here, with why. */
  warnings: string[];
}

export interface LoadKamalOptions {
  /** Path of config/deploy.yml. */
  file: string;
  destination?: string;
  /** What ERB's ENV sees (default process.env). */
  env?: Record<string, string | undefined>;
  /** Run `` `command` `` ERB expressions locally, as Kamal does (default false). */
  allowShellInErb?: boolean;
  /** The Kamal major version the file is for, when detection should not decide. */
  kamal?: 1 | 2;
  /** ERB renderer: "ruby" (Ruby's ERB, as Kamal), "builtin" (a subset); default Ruby when
   * installed. */
  erb?: "ruby" | "builtin";
  /** Home directory for `~` and the user's SSH config (default: this user's). */
  home?: string;
}

/** Kamal 1's default Traefik image. */
export const DEFAULT_TRAEFIK_IMAGE = "traefik:v2.10";

/** Reads deploy.yml (and deploy.<destination>.yml, deep-merged over it). */
export function loadKamalConfig(opts: LoadKamalOptions): KamalConfig {
  const file = path.resolve(opts.file);
  const appRoot = path.dirname(path.dirname(file));
  // Kamal sets KAMAL_DESTINATION before it renders the files.
  const env: Record<string, string | undefined> = { ...(opts.env ?? process.env), KAMAL_DESTINATION: opts.destination };
  if (!opts.destination) delete env.KAMAL_DESTINATION;
  const shell = opts.allowShellInErb
    ? (command: string, cwd: string) => {
        // Like Ruby's backticks: the output, even when the command fails.
        try {
          return execSync(command, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
        } catch (e) {
          return String((e as { stdout?: string }).stdout ?? "");
        }
      }
    : undefined;
  const destFile = opts.destination ? file.replace(/\.yml$/, `.${opts.destination}.yml`) : undefined;
  if (destFile && !existsSync(destFile)) throw new ConfigError([{ path: "destination", message: `${path.basename(destFile)} does not exist next to ${path.basename(file)}` }]);
  loadKamal1Env(appRoot, [file, ...(destFile ? [destFile] : [])], env, opts);
  const docs = [readYaml(file, appRoot, env, shell, opts.erb)];
  if (destFile) docs.push(readYaml(destFile, appRoot, env, shell, opts.erb));
  const merged = docs.reduce((a, b) => deepMerge(a, b), {} as Record<string, unknown>);
  // OpenSSH config files, as net-ssh reads them for Kamal (ssh.config).
  const home = opts.home ?? os.homedir();
  const sshSetting = (merged.ssh as { config?: unknown } | undefined)?.config;
  const blocks = readSshConfig(sshConfigFiles(typeof sshSetting === "boolean" || typeof sshSetting === "string" || Array.isArray(sshSetting) ? (sshSetting as string[]) : undefined, home), home);
  return normalizeKamalConfig(merged, { destination: opts.destination, appRoot, kamal: opts.kamal, sshConfig: (h) => sshHostConfig(blocks, h, home) });
}

/**
 * Kamal 1's CLI loaded `.env.<destination>` and `.env` into ENV before it rendered deploy.yml
 * (Kamal 2 does not). For a Kamal 1 project (`kamal: 1`, or a `.env` and no `.kamal/secrets*`),
 * the names the templates read through ENV and the environment does not set are taken from
 * those files, evaluated (their `$(…)` included) only for those names.
 */
function loadKamal1Env(appRoot: string, files: string[], env: Record<string, string | undefined>, opts: LoadKamalOptions): void {
  if (opts.kamal === 2) return;
  const kamal2Secrets = existsSync(path.join(appRoot, ".kamal")) && readdirSync(path.join(appRoot, ".kamal")).some((f) => f.startsWith("secrets"));
  if (opts.kamal !== 1 && (kamal2Secrets || !existsSync(path.join(appRoot, ".env")))) return;
  const dotenv = new SecretsFiles({ appRoot, kamal: 1, destination: opts.destination, env });
  for (const f of files) {
    for (const name of envNamesRead(readFileSync(f, "utf8"))) {
      if (env[name] === undefined && dotenv.has(name)) env[name] = dotenv.get(name);
    }
  }
}

/** The names an ERB template reads as `ENV["X"]` or `ENV.fetch("X", …)`. */
export function envNamesRead(template: string): string[] {
  return [...new Set([...template.matchAll(/ENV(?:\[\s*|\.fetch\(\s*)["']([A-Za-z_][A-Za-z0-9_]*)["']/g)].map((m) => m[1]))];
}

function readYaml(
  file: string,
  appRoot: string,
  env: Record<string, string | undefined>,
  shell?: (command: string, cwd: string) => string,
  renderer?: "ruby" | "builtin",
): Record<string, unknown> {
  const text = renderErb(readFileSync(file, "utf8"), { env, root: appRoot, file: path.basename(file), shell, renderer });
  const doc = YAML.parse(text, { merge: true }) ?? {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError([{ path: "(root)", message: `${path.basename(file)} must be a YAML mapping` }]);
  }
  return stripExtensions(doc as Record<string, unknown>);
}

/** Kamal ignores top-level keys starting with "x-" (homes for YAML anchors). */
function stripExtensions(doc: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith("x-")));
}

/** Objects merge key by key; anything else (lists included) is replaced, as in Kamal. */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = isPlain(cur) && isPlain(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates and normalizes an already-parsed (merged) deploy.yml. */
export function normalizeKamalConfig(
  doc: Record<string, unknown>,
  ctx: { destination?: string; appRoot?: string; kamal?: 1 | 2; sshConfig?: (host: string) => SshHostConfig } = {},
): KamalConfig {
  const parsed = root.safeParse(doc);
  if (!parsed.success) throw new ConfigError(problemsFrom(parsed.error.issues));
  const raw = parsed.data;
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  for (const [key, why] of Object.entries(NOT_USED)) {
    if ((raw as Record<string, unknown>)[key] !== undefined) warnings.push(`${key}: not used (${why})`);
  }

  const kamal = ctx.kamal ?? kamalVersionOf(raw);
  const isKamal2 = kamal === 2;
  if (isKamal2) {
    // Kamal 2 refuses Kamal 1's keys as unknown.
    for (const key of KAMAL1_ONLY) {
      if (raw[key] !== undefined) problems.push({ path: key, message: `unknown key in Kamal 2 (${KAMAL1_TO_2[key]})` });
    }
  }
  const globalEnv = envOf(raw.env);
  const server = raw.registry?.server;
  const image = server && !raw.image.startsWith(`${server}/`) ? `${server}/${raw.image}` : raw.image;
  const registry = registryOf(raw.registry, "registry", problems);

  // Kamal: the primary role is primary_role, else "web"; it must exist and have hosts.
  const primaryRole = raw.primary_role ?? raw.primary_web_role ?? "web";
  const roles = rolesOf(raw, isKamal2, primaryRole, globalEnv, problems, warnings);
  const roleNames = roles.map((r) => r.name);
  const declared = Array.isArray(raw.servers) ? ["web"] : Object.keys(raw.servers);
  if (!declared.includes(primaryRole)) {
    problems.push({ path: raw.primary_role ? "primary_role" : "servers", message: `the primary role ${primaryRole} isn't defined (roles: ${declared.join(", ")})` });
  } else if (!roleNames.includes(primaryRole)) {
    problems.push({ path: `servers.${primaryRole}`, message: `no servers specified for the ${primaryRole} primary role` });
  }

  if (raw.ssh?.log_level !== undefined) warnings.push("ssh.log_level: not used");

  const traefikRoles = roles.filter((r) => r.traefik);
  const traefik: KamalConfig["traefik"] =
    traefikRoles.length && !isKamal2
      ? {
          image: raw.traefik?.image ?? DEFAULT_TRAEFIK_IMAGE,
          hostPort: raw.traefik?.host_port,
          args: raw.traefik?.args ?? {},
          labels: raw.traefik?.labels ?? {},
          options: raw.traefik?.options ?? {},
          env: envOf(raw.traefik?.env),
          networks: [],
        }
      : isKamal2 && traefikRoles.length
        ? { image: raw.traefik?.image ?? DEFAULT_TRAEFIK_IMAGE, hostPort: 80, args: {}, labels: {}, options: {}, env: { clear: {}, secret: [] }, networks: [KAMAL_NETWORK] }
        : undefined;

  if (isKamal2 && traefik) {
    // kamal-proxy serves 443 with Let's Encrypt for the roles that ask; Traefik here does so
    // only then (a Traefik change is a restart).
    if (roles.some((r) => r.route?.ssl)) traefik.tls = roles.some((r) => r.route?.ssl === true) ? { acme: {} } : {};
    if (roles.some((r) => r.traefik && r.route?.forwardHeaders)) traefik.forwardedHeaders = true;
  }
  // Kamal: "Different roles can't share the same host for SSL".
  const sslHosts = roles.filter((r) => r.route?.ssl).flatMap((r) => r.routeHosts);
  const shared = [...new Set(sslHosts.filter((h, i) => sslHosts.indexOf(h) !== i))];
  if (shared.length) problems.push({ path: "proxy", message: `Different roles can't share the same host for SSL: ${shared.join(", ")}` });
  let maintenancePage: string | undefined;
  if (isKamal2 && raw.error_pages_path) {
    const page = path.resolve(ctx.appRoot ?? process.cwd(), raw.error_pages_path, "503.html");
    if (existsSync(page)) maintenancePage = readFileSync(page, "utf8");
    else warnings.push(`error_pages_path: ${raw.error_pages_path}/503.html does not exist: maintenance uses the default page (other error pages are Traefik's own)`);
  }

  const accessories = Object.entries(raw.accessories ?? {}).map(([name, a]) =>
    accessoryOf(raw.service, name, a, roles, problems, warnings, ctx.appRoot ?? process.cwd(), kamal),
  );

  const secretNames = new Set<string>(
    [
      ...globalEnv.secret,
      ...roles.flatMap((r) => r.hosts.flatMap((h) => h.env.secret)),
      ...(traefik?.env.secret ?? []),
      ...accessories.flatMap((a) => a.env.secret),
    ].map((entry) => secretEnvName(entry).secret),
  );
  for (const r of roles) if (typeof r.route?.ssl === "object") secretNames.add(r.route.ssl.certificatePem).add(r.route.ssl.privateKeyPem);
  for (const reg of [registry, ...accessories.map((a) => a.registry)]) {
    if (reg) for (const r of [reg.username, reg.password]) if ("secret" in r) secretNames.add(r.secret);
  }

  // Build secrets stay the builder's (builder.secrets): needed only when the image is built,
  // never to deploy one (a --skip-push deploy has no reason to know them).
  const builder = builderOf(raw.builder, kamal, problems);
  const fromSshConfig = sshConfigOf(raw, roles, accessories, ctx.sshConfig, problems);
  if (problems.length) throw new ConfigError(problems);
  // Kamal's jump host user defaults to root, whatever ssh.user is.
  const proxyUser = raw.ssh?.proxy?.includes("@") ? raw.ssh.proxy.split("@")[0] : "root";
  const proxyHost = raw.ssh?.proxy?.split("@").pop();
  return {
    service: raw.service,
    image,
    destination: ctx.destination,
    registry,
    ssh: {
      user: raw.ssh?.user,
      port: raw.ssh?.port,
      proxy: proxyHost ? { host: proxyHost.split(":")[0], user: proxyUser, port: proxyHost.includes(":") ? Number(proxyHost.split(":")[1]) : undefined } : fromSshConfig.proxy,
      keyPaths: raw.ssh?.keys ?? fromSshConfig.keyPaths,
      hostNames: fromSshConfig.hostNames,
      // net-ssh's Proxy::Command: run locally, with %h, %p (and %r) substituted.
      proxyCommand: raw.ssh?.proxy ? undefined : (raw.ssh?.proxy_command ?? fromSshConfig.proxyCommand),
      keyData: (raw.ssh?.key_data ?? []).map((k) => new SecretText(k)),
    },
    roles,
    primaryRole,
    builder,
    kamal,
    secretsPath: raw.secrets_path,
    env: globalEnv,
    volumes: raw.volumes ?? [],
    labels: raw.labels ?? {},
    traefik,
    maintenancePage,
    hooksPath: raw.hooks_path ?? ".kamal/hooks",
    accessories,
    boot: { limit: raw.boot?.limit, wait: raw.boot?.wait },
    stopWaitTime: isKamal2 ? raw.stop_timeout ?? raw.drain_timeout : raw.stop_wait_time ?? raw.drain_timeout,
    readinessDelay: isKamal2 ? raw.readiness_delay ?? 7 : undefined,
    retainContainers: raw.retain_containers,
    logging: raw.logging,
    secretNames: [...secretNames].sort(),
    warnings,
  };
}

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

/** Keys only Kamal 1 has, and what Kamal 2 has instead. */
const KAMAL1_TO_2 = {
  traefik: "Kamal 2 runs kamal-proxy: use proxy",
  healthcheck: "Kamal 2 health checks are proxy.healthcheck",
  primary_web_role: "use primary_role",
  stop_wait_time: "use drain_timeout or stop_timeout",
} as const;
const KAMAL1_ONLY = Object.keys(KAMAL1_TO_2) as (keyof typeof KAMAL1_TO_2)[];

/**
 * Kamal 1 or 2, by the keys the file uses: any Kamal 2 construct (proxy at the top, on a role
 * or an accessory; secrets_path, stop_timeout, readiness_delay, error_pages_path,
 * hooks_output, boot.parallel_roles, a secret alias, a role's stop_timeout, Kamal 2's builder
 * keys) makes it Kamal 2; else any Kamal 1 key (traefik at the top or on a role, healthcheck,
 * primary_web_role, stop_wait_time, builder.multiarch or a local/remote builder object) makes
 * it Kamal 1; a file with neither is Kamal 2, the current release.
 */
export function kamalVersionOf(raw: Raw): 1 | 2 {
  const roles = Array.isArray(raw.servers) ? [] : Object.values(raw.servers).filter((r): r is z.output<typeof role> => !Array.isArray(r));
  const envs = [raw.env, ...roles.map((r) => r.env), ...Object.values(raw.accessories ?? {}).map((a) => a.env)];
  const k2 =
    raw.proxy !== undefined ||
    roles.some((r) => r.proxy !== undefined || r.stop_timeout !== undefined) ||
    Object.values(raw.accessories ?? {}).some((a) => a.proxy !== undefined) ||
    ["secrets_path", "stop_timeout", "readiness_delay", "error_pages_path", "hooks_output"].some((k) => (raw as Record<string, unknown>)[k] !== undefined) ||
    raw.boot?.parallel_roles !== undefined ||
    builderKamalVersion(raw.builder) === 2 ||
    envs.some((e) => isEnvBlock(e) && (e.secret ?? []).some((x) => x.includes(":")));
  if (k2) return 2;
  const k1 = KAMAL1_ONLY.some((k) => raw[k] !== undefined) || roles.some((r) => r.traefik !== undefined) || builderKamalVersion(raw.builder) === 1;
  return k1 ? 1 : 2;
}

/** Kamal 2's shared Docker network, created on each host: apps, accessories and the proxy
 * reach each other by container name. */
export const KAMAL_NETWORK = "kamal";

function withKamalNetwork<T extends Record<string, unknown>>(options: T): T {
  return options.network !== undefined || options.net !== undefined ? options : { ...options, network: KAMAL_NETWORK };
}

/**
 * What the SSH config files (`ssh.config`) say about the hosts, as net-ssh applies them under
 * Kamal: an alias's HostName; IdentityFile and ProxyJump unless deploy.yml sets `ssh.keys` /
 * `ssh.proxy` / `ssh.proxy_command` (one SSH setting serves every host here, so hosts that
 * differ are refused, naming them); ProxyCommand as `ssh.proxy_command`.
 */
function sshConfigOf(
  raw: z.output<typeof root>,
  roles: KamalRole[],
  accessories: KamalAccessory[],
  lookup: ((host: string) => SshHostConfig) | undefined,
  problems: ConfigProblem[],
): { hostNames: Record<string, string>; keyPaths: string[]; proxy?: { host: string; user: string; port?: number }; proxyCommand?: string } {
  const out: { hostNames: Record<string, string>; keyPaths: string[]; proxy?: { host: string; user: string; port?: number }; proxyCommand?: string } = { hostNames: {}, keyPaths: [] };
  if (!lookup) return out;
  const hosts = [...new Set([...roles.flatMap((r) => r.hosts.map((h) => h.address)), ...accessories.flatMap((a) => a.hosts)])];
  const seen = hosts.map((h) => ({ host: h, ...lookup(h) }));
  for (const s of seen) {
    if (s.hostName && s.hostName !== s.host) out.hostNames[s.host] = s.hostName;
  }
  const same = (what: string, values: string[]) => {
    const distinct = [...new Set(values)];
    if (distinct.length > 1) {
      const [a, b] = [seen[values.indexOf(distinct[0])].host, seen[values.indexOf(distinct[1])].host];
      problems.push({ path: "ssh.config", message: `hosts ${a} and ${b} have different ${what} in the SSH config; one setting serves every host here: set it in deploy.yml` });
    }
    return distinct[0];
  };
  if (!raw.ssh?.keys && !raw.ssh?.key_data) {
    const keys = same("IdentityFile", seen.map((s) => JSON.stringify(s.identityFiles)));
    if (keys) out.keyPaths = JSON.parse(keys) as string[];
  }
  if (!raw.ssh?.proxy && !raw.ssh?.proxy_command) {
    // OpenSSH takes the first of ProxyJump / ProxyCommand a host's config gives.
    const command = same("ProxyCommand", seen.map((s) => s.proxyCommand ?? ""));
    if (command) out.proxyCommand = command;
    const jump = command ? "" : same("ProxyJump", seen.map((s) => s.proxyJump ?? ""));
    if (jump && jump.includes(",")) problems.push({ path: "ssh.config", message: `ProxyJump ${jump} is a chain of jump hosts, which is not supported: one jump host` });
    else if (jump) {
      const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(jump);
      if (m) {
        const own = lookup(m[2]);
        out.proxy = { host: own.hostName ?? m[2], user: m[1] ?? own.user ?? os.userInfo().username, port: m[3] ? Number(m[3]) : own.port };
      }
    }
  }
  return out;
}

/** Credentials of a registry; only a localhost registry may have none (Kamal 2.10+). */
function registryOf(r: z.output<typeof registryConfig> | undefined, at: string, problems: ConfigProblem[]): KamalConfig["registry"] {
  if (!r) return undefined;
  if (!/^localhost[:$]/.test(r.server ?? "")) {
    for (const key of ["username", "password"] as const) {
      if (r[key] === undefined || r[key] === "") problems.push({ path: `${at}.${key}`, message: "is required (only a localhost registry may have no credentials)" });
    }
  }
  return r.username !== undefined && r.password !== undefined ? { server: r.server ?? "docker.io", username: refOf(r.username), password: refOf(r.password) } : undefined;
}

function refOf(v: string | string[]): ValueRef {
  return Array.isArray(v) ? { secret: v[0] } : { value: v };
}

function envOf(e: z.output<typeof env> | undefined): KamalEnv {
  if (!e) return { clear: {}, secret: [] };
  if (isEnvBlock(e)) return { clear: e.clear ?? {}, secret: e.secret ?? [] };
  return { clear: e as Record<string, string>, secret: [] };
}

function isEnvBlock(e: unknown): e is { clear?: Record<string, string>; secret?: string[]; tags?: Record<string, unknown> } {
  return isPlain(e) && Object.keys(e).every((k) => k === "clear" || k === "secret" || k === "tags") && Object.keys(e).length > 0;
}

/** Kamal's Env#merge: clear values merge (the later wins), secret names are a union (an
 * entry for a name already there replaces it). */
function mergeEnv(a: KamalEnv, b: KamalEnv): KamalEnv {
  const names = new Set(b.secret.map((e) => secretEnvName(e).name));
  return { clear: { ...a.clear, ...b.clear }, secret: [...a.secret.filter((e) => !names.has(secretEnvName(e).name)), ...b.secret] };
}

function seconds(d: number | string | undefined, fallback: number): number {
  if (d === undefined) return fallback;
  if (typeof d === "number") return d;
  const n = parseFloat(d);
  return d.endsWith("ms") ? n / 1000 : d.endsWith("m") ? n * 60 : n;
}

function rolesOf(raw: Raw, isKamal2: boolean, primaryRole: string, globalEnv: KamalEnv, problems: ConfigProblem[], warnings: string[]): KamalRole[] {
  const servers = Array.isArray(raw.servers) ? { web: raw.servers } : raw.servers;
  const tagEnv = isEnvBlock(raw.env) ? (raw.env as { tags?: Record<string, unknown> }).tags ?? {} : {};
  const out: KamalRole[] = [];
  for (const [name, spec] of Object.entries(servers)) {
    const r = Array.isArray(spec) ? { hosts: spec } : spec;
    const at = `servers.${name}`;
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) problems.push({ path: at, message: "role names may contain only letters, digits, '_', '.', '-'" });
    const roleEnv = mergeEnv(globalEnv, envOf(r.env));
    const hosts: KamalHost[] = (r.hosts ?? []).map((h) => {
      const [address, tags] = typeof h === "string" ? [h, [] as string[]] : Object.entries(h).map(([a, t]) => [a, Array.isArray(t) ? t : [t]] as const)[0];
      let env = roleEnv;
      // A tag without env.tags.<tag> adds nothing (Kamal ignores it).
      for (const te of tags.map((t) => tagEnv[t]).filter((t) => t !== undefined)) {
        env = mergeEnv(env, isEnvBlock(te) ? { clear: (te as { clear?: Record<string, string> }).clear ?? {}, secret: (te as { secret?: string[] }).secret ?? [] } : { clear: te as Record<string, string>, secret: [] });
      }
      return { address: String(address), tags: [...tags], env };
    });
    if (hosts.length === 0) {
      if (name !== primaryRole && !raw.allow_empty_roles) {
        problems.push({ path: at, message: `no servers specified for the ${name} role (allow_empty_roles: true skips it)` });
      } else if (name !== primaryRole) {
        warnings.push(`${at}: has no hosts; skipped (allow_empty_roles)`);
      }
      continue;
    }
    const primary = name === primaryRole;
    // Kamal: the primary role runs behind the proxy unless it says false; another role only
    // when it says so (true, or settings).
    const traefik = isKamal2 ? (primary ? r.proxy !== false : !!r.proxy) : primary ? r.traefik !== false : !!r.traefik;
    if (isPlain(r.traefik)) warnings.push(`${at}.traefik: role-level Traefik settings are not used; put labels under ${at}.labels`);
    // Kamal bridges assets only for a role behind its proxy.
    const assetPath = r.asset_path ?? raw.asset_path;
    if (r.asset_path !== undefined && !traefik) warnings.push(`${at}.asset_path: not used (assets are bridged only for a role behind the proxy, as in Kamal)`);

    const hc = { ...(raw.healthcheck ?? {}), ...(r.healthcheck ?? {}) };
    if (typeof hc.cord === "string" && hc.cord !== "/tmp/kamal-cord") warnings.push(`${at}.healthcheck.cord: a custom cord path is not supported (/tmp/kamal-cord is used)`);
    if (hc.log_lines !== undefined) warnings.push(`${at}.healthcheck.log_lines: not used (the last 30 lines are shown)`);
    if (hc.exposed_port !== undefined) warnings.push(`${at}.healthcheck.exposed_port: not used`);
    // Kamal 2: a role's proxy settings over the top-level ones.
    const p = isKamal2 && traefik ? { ...(raw.proxy ?? {}), ...(isPlain(r.proxy) ? r.proxy : {}) } : undefined;
    if (p) for (const w of proxyWarnings(p, isPlain(r.proxy) ? `${at}.proxy` : "proxy")) if (!warnings.includes(w)) warnings.push(w);
    const appPort = isKamal2 ? p?.app_port ?? 80 : hc.port ?? 3000;
    // Kamal: `host` may list several, comma-separated.
    const routeHosts = p ? [...(p.host ? p.host.split(",").map((h) => h.trim()) : []), ...(p.hosts ?? [])] : [];
    let healthcheck: KamalRole["healthcheck"];
    if (isKamal2) {
      healthcheck = p
        ? { path: p.healthcheck?.path ?? "/up", port: appPort, interval: seconds(p.healthcheck?.interval, 1), timeout: seconds(p.healthcheck?.timeout, 5), deadline: raw.deploy_timeout ?? 30 }
        : undefined;
    } else if (traefik || r.healthcheck) {
      const attempts = hc.max_attempts ?? 7;
      // Kamal 1 polls max_attempts times with a linearly growing pause (1s, 2s, …).
      healthcheck = { path: hc.path ?? "/up", port: appPort, cmd: hc.cmd, interval: seconds(hc.interval, 1), deadline: raw.deploy_timeout ?? (attempts * (attempts + 1)) / 2 };
    }
    out.push({
      name,
      hosts,
      cmd: r.cmd,
      // Kamal 2 runs every app container on the `kamal` network (reached by name).
      options: isKamal2 ? withKamalNetwork(r.options ?? {}) : r.options ?? {},
      labels: { ...(raw.labels ?? {}), ...(r.labels ?? {}) },
      traefik,
      appPort,
      healthcheck,
      routeHosts,
      route: p ? routeOf(p, `${isPlain(r.proxy) ? `${at}.proxy` : "proxy"}`, name, hosts.length, routeHosts, problems) : undefined,
      stopWaitTime: r.stop_timeout,
      logging: r.logging ?? raw.logging,
      assetPath: traefik ? assetPath : undefined,
    });
  }
  return out;
}

/** Kamal 2 proxy settings Traefik here does not apply, by path. */
function proxyWarnings(p: z.output<typeof proxy>, at: string): string[] {
  const out: string[] = [];
  if (p.logging !== undefined) out.push(`${at}.logging: not applied (Traefik's access log is configured on Traefik: its args)`);
  if (p.run !== undefined) out.push(`${at}.run: not applied (kamal-proxy's own container settings; Traefik's are traefik.image and the Traefik component's arguments)`);
  if (p.buffering && p.buffering.requests !== p.buffering.responses && (p.buffering.requests !== undefined || p.buffering.responses !== undefined)) {
    out.push(`${at}.buffering: Traefik buffers requests and responses together: both are buffered`);
  }
  return out;
}

/** Kamal 2's proxy settings of a role as route settings, with kamal-proxy's defaults: a
 * 30 s response timeout, headers forwarded unless ssl. Kamal's own rules first: ssl needs a
 * host, and Let's Encrypt a single server. */
function routeOf(p: z.output<typeof proxy>, at: string, role: string, hostCount: number, routeHosts: string[], problems: ConfigProblem[]): KamalRoute {
  let ssl: KamalRoute["ssl"] = false;
  if (typeof p.ssl === "object") {
    const { certificate_pem: cert, private_key_pem: key } = p.ssl;
    if (cert && !key) problems.push({ path: `${at}.ssl`, message: "Missing private_key_pem setting (required when certificate_pem is present)" });
    if (key && !cert) problems.push({ path: `${at}.ssl`, message: "Missing certificate_pem setting (required when private_key_pem is present)" });
    ssl = cert && key ? { certificatePem: cert, privateKeyPem: key } : true;
  } else if (p.ssl) ssl = true;
  if (ssl && !routeHosts.length) problems.push({ path: at, message: "Must set a host to enable automatic SSL" });
  if (p.host && p.hosts) problems.push({ path: at, message: "Specify one of 'host' or 'hosts', not both" });
  if (ssl === true && hostCount > 1) {
    problems.push({ path: `${at}.ssl`, message: `SSL is only supported on a single server unless you provide custom certificates, found ${hostCount} servers for role ${role}` });
  }
  const prefixes = p.path_prefixes ?? (p.path_prefix ? p.path_prefix.split(",").map((x) => x.trim()).filter(Boolean) : []);
  const b = p.buffering;
  const buffered = b && (b.requests !== false || b.responses !== false);
  return {
    ssl,
    sslRedirect: p.ssl_redirect,
    pathPrefixes: prefixes,
    stripPathPrefix: p.strip_path_prefix,
    responseTimeout: seconds(p.response_timeout, 30),
    buffering: buffered ? { maxRequestBody: b.max_request_body || undefined, maxResponseBody: b.max_response_body || undefined, memory: b.memory } : undefined,
    forwardHeaders: p.forward_headers ?? !ssl,
  };
}

function accessoryOf(
  service: string,
  name: string,
  a: z.output<typeof accessory>,
  roles: KamalRole[],
  problems: ConfigProblem[],
  warnings: string[],
  appRoot: string,
  kamal: 1 | 2,
): KamalAccessory {
  const at = `accessories.${name}`;
  const placement = (["host", "hosts", "role", "roles", "tag", "tags"] as const).filter((k) => a[k] !== undefined);
  if (placement.length !== 1) problems.push({ path: at, message: "specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`" });
  const ofRole = (r: string) => {
    const found = roles.find((x) => x.name === r);
    if (!found) problems.push({ path: `${at}.${a.role ? "role" : "roles"}`, message: `names no role with hosts: ${r}` });
    return found?.hosts.map((h) => h.address) ?? [];
  };
  const ofTag = (t: string) => roles.flatMap((r) => r.hosts.filter((h) => h.tags.includes(t)).map((h) => h.address));
  const hosts = [
    ...(a.host ? [a.host] : []),
    ...(a.hosts ?? []),
    ...[...(a.role ? [a.role] : []), ...(a.roles ?? [])].flatMap(ofRole),
    ...[...(a.tag ? [a.tag] : []), ...(a.tags ?? [])].flatMap(ofTag),
  ];
  if (placement.length === 1 && hosts.length === 0) problems.push({ path: `${at}.${placement[0]}`, message: "names no host" });
  const options = { ...(a.network ? { network: a.network } : {}), ...(a.options ?? {}) };
  if (a.proxy) warnings.push(`${at}.proxy: not applied yet (an accessory behind the proxy is not routed here)`);
  // Kamal 2: an accessory's own registry; its server goes in front of the image.
  const registry = registryOf(a.registry, `${at}.registry`, problems);
  const files = (a.files ?? []).map((spec, i) => {
    const { local: source, remote: target, options, mode } = pathSpec(spec);
    const local = path.resolve(appRoot, source);
    if (!existsSync(local)) {
      problems.push({ path: `${at}.files.${i}`, message: `${source} does not exist (relative to ${appRoot})` });
      return { source, target, content: "", template: false };
    }
    return { source, target, content: readFileSync(local, "utf8"), template: source.endsWith("erb"), ...(options ? { options } : {}), ...(mode ? { mode } : {}) };
  });

  return {
    name,
    containerName: a.service ?? `${service}-${name}`,
    image: a.registry?.server ? `${a.registry.server}/${a.image}` : a.image,
    registry,
    hosts: [...new Set(hosts)],
    port: a.port,
    cmd: a.cmd,
    env: envOf(a.env),
    files,
    directories: (a.directories ?? []).map((d) => {
      const { local, remote, options } = pathSpec(d);
      return `${local}:${remote}${options ? `:${options}` : ""}`;
    }),
    volumes: a.volumes ?? [],
    options: kamal === 2 ? withKamalNetwork(options) : options,
    labels: a.labels ?? {},
  };
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

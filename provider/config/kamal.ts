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
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { ConfigError, problemsFrom, type ConfigProblem } from "./errors";
import { renderErb } from "./erb";

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);
/** YAML scalars as strings; an empty value (null, as from an empty ERB) is "". */
const scalarMap = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean(), z.null()], { error: "must be a string, number or boolean" }).transform((v) => (v === null ? "" : String(v))),
);
const nameList = z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "must be an environment variable name" }));
/** A value or, as a one-element list, the name of a secret holding it (Kamal's convention). */
const valueOrSecret = z.union([scalar, z.array(z.string()).length(1, { message: "must name exactly one secret" })]);

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
  cord: z.string().optional(),
  exposed_port: z.number().int().optional(),
});

const proxy = z.strictObject({
  app_port: z.number().int().optional(),
  host: z.string().optional(),
  hosts: z.array(z.string()).optional(),
  ssl: z.union([z.boolean(), z.record(z.string(), z.unknown())]).optional(),
  ssl_redirect: z.boolean().optional(),
  healthcheck: z.strictObject({ path: z.string().optional(), interval: duration.optional(), timeout: duration.optional() }).optional(),
  response_timeout: duration.optional(),
  forward_headers: z.boolean().optional(),
  buffering: z.record(z.string(), z.unknown()).optional(),
  logging: z.record(z.string(), z.unknown()).optional(),
  path_prefix: z.string().optional(),
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
  cmd: z.union([z.string(), z.array(z.string())]).optional(),
  options: options.optional(),
  labels: scalarMap.optional(),
  env: env.optional(),
  traefik: z.union([z.boolean(), z.record(z.string(), z.unknown())]).optional(),
  healthcheck: healthcheck.optional(),
  logging: logging.optional(),
  proxy: z.union([z.boolean(), proxy]).optional(),
});

const accessory = z.strictObject({
  service: z.string().optional(),
  image: z.string(),
  host: z.string().optional(),
  hosts: z.array(z.string()).optional(),
  roles: z.array(z.string()).optional(),
  port: z.union([z.number().int(), z.string()]).optional(),
  cmd: z.union([z.string(), z.array(z.string())]).optional(),
  env: env.optional(),
  files: z.array(z.string().regex(/^[^:]+:\/[^:]*$/, { message: 'must be "local/path:/path/in/container"' })).optional(),
  directories: z.array(z.string()).optional(),
  volumes: z.array(z.string()).optional(),
  options: options.optional(),
  labels: scalarMap.optional(),
  registry: z.record(z.string(), z.unknown()).optional(),
  proxy: z.record(z.string(), z.unknown()).optional(),
});

/** Kamal keys about building images or driving the kamal CLI: they change nothing here. */
const NOT_USED: Record<string, string> = {
  builder: "build and push images yourself; this deploys an existing image",
  aliases: "kamal CLI aliases have no Pulumi equivalent",
  minimum_version: "kamal CLI version check",
  require_destination: "choose the destination in the program",
  hooks_path: "kamal hooks are not run; use Pulumi resources for pre/post steps",
  sshkit: "SSHKit settings do not apply (ssh2 is used)",
  allow_empty_roles: "roles without hosts are skipped",
  secrets_path: "pass secrets through Pulumi config or the secretsFile option",
  run_directory: "the provider keeps its files in ~/.kamal",
  asset_path: "asset bridging between versions is not supported: old fingerprinted assets may 404 during a swap",
  error_pages_path: "kamal-proxy error pages are not supported",
  readiness_delay: "health checks decide readiness",
};

const root = z.strictObject({
  service: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { message: "must contain only letters, digits, '_', '.', '-'" }),
  image: z.string(),
  servers: z.union([z.array(hostEntry), z.record(z.string(), z.union([z.array(hostEntry), role]))]),
  env: env.optional(),
  registry: z
    .strictObject({ server: z.string().optional(), username: valueOrSecret, password: valueOrSecret })
    .optional(),
  ssh: z
    .strictObject({
      user: z.string().optional(),
      port: z.number().int().optional(),
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
  boot: z.strictObject({ limit: z.union([z.number().int().min(1), z.string().regex(/^\d+%$/, { message: 'must be a number or a percentage like "25%"' })]).optional(), wait: z.number().optional() }).optional(),
  stop_wait_time: z.number().optional(),
  retain_containers: z.number().int().min(0).optional(),
  labels: scalarMap.optional(),
  volumes: z.array(z.string()).optional(),
  logging: logging.optional(),
  primary_role: z.string().optional(),
  primary_web_role: z.string().optional(),
  deploy_timeout: z.number().optional(),
  drain_timeout: z.number().optional(),
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
  traefik: boolean;
  appPort: number;
  healthcheck?: { path: string; port: number; cmd?: string; interval: number; deadline: number };
  logging?: { driver?: string; options?: Record<string, string> };
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
  files: { source: string; target: string; content: string }[];
  directories: string[];
  volumes: string[];
  options: Record<string, string | number | boolean | (string | number)[]>;
  labels: Record<string, string>;
}

export interface KamalConfig {
  service: string;
  /** Repository with the registry server in front, as Kamal pulls it. */
  image: string;
  destination?: string;
  registry?: { server: string; username: ValueRef; password: ValueRef };
  ssh: { user?: string; port?: number; proxy?: { host: string; user?: string; port?: number }; keyPaths: string[]; keyDataSecrets: string[] };
  roles: KamalRole[];
  primaryRole: string;
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
  };
  accessories: KamalAccessory[];
  boot: { limit?: number | string; wait?: number };
  stopWaitTime?: number;
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
}

/** Kamal 1's default Traefik image. */
export const DEFAULT_TRAEFIK_IMAGE = "traefik:v2.10";

/** Reads deploy.yml (and deploy.<destination>.yml, deep-merged over it). */
export function loadKamalConfig(opts: LoadKamalOptions): KamalConfig {
  const file = path.resolve(opts.file);
  const appRoot = path.dirname(path.dirname(file));
  const env = { ...(opts.env ?? process.env) };
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
  const docs = [readYaml(file, appRoot, env, shell)];
  if (opts.destination) {
    const destFile = file.replace(/\.yml$/, `.${opts.destination}.yml`);
    if (!existsSync(destFile)) throw new ConfigError([{ path: "destination", message: `${path.basename(destFile)} does not exist next to ${path.basename(file)}` }]);
    docs.push(readYaml(destFile, appRoot, env, shell));
  }
  const merged = docs.reduce((a, b) => deepMerge(a, b), {} as Record<string, unknown>);
  return normalizeKamalConfig(merged, { destination: opts.destination, appRoot });
}

function readYaml(
  file: string,
  appRoot: string,
  env: Record<string, string | undefined>,
  shell?: (command: string, cwd: string) => string,
): Record<string, unknown> {
  const text = renderErb(readFileSync(file, "utf8"), { env, root: appRoot, file: path.basename(file), shell });
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
export function normalizeKamalConfig(doc: Record<string, unknown>, ctx: { destination?: string; appRoot?: string } = {}): KamalConfig {
  const parsed = root.safeParse(doc);
  if (!parsed.success) throw new ConfigError(problemsFrom(parsed.error.issues));
  const raw = parsed.data;
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  for (const [key, why] of Object.entries(NOT_USED)) {
    if ((raw as Record<string, unknown>)[key] !== undefined) warnings.push(`${key}: not used (${why})`);
  }

  const isKamal2 = raw.proxy !== undefined;
  const globalEnv = envOf(raw.env);
  const server = raw.registry?.server;
  const image = server && !raw.image.startsWith(`${server}/`) ? `${server}/${raw.image}` : raw.image;

  const roles = rolesOf(raw, isKamal2, globalEnv, problems, warnings);
  const roleNames = roles.map((r) => r.name);
  const primaryRole = raw.primary_role ?? raw.primary_web_role ?? (roleNames.includes("web") ? "web" : roleNames[0]);
  if (primaryRole !== undefined && !roleNames.includes(primaryRole)) {
    problems.push({ path: "primary_role", message: `names no role with hosts (roles: ${roleNames.join(", ")})` });
  }
  if (roles.length === 0) problems.push({ path: "servers", message: "no role has any host" });

  if (raw.ssh?.proxy_command) problems.push({ path: "ssh.proxy_command", message: "is not supported: use ssh.proxy (a jump host)" });
  if (raw.ssh?.config !== undefined) warnings.push("ssh.config: not used (OpenSSH config files are not read)");
  if (raw.ssh?.log_level !== undefined) warnings.push("ssh.log_level: not used");

  const traefikRoles = roles.filter((r) => r.traefik);
  const traefik =
    traefikRoles.length && !isKamal2
      ? {
          image: raw.traefik?.image ?? DEFAULT_TRAEFIK_IMAGE,
          hostPort: raw.traefik?.host_port,
          args: raw.traefik?.args ?? {},
          labels: raw.traefik?.labels ?? {},
          options: raw.traefik?.options ?? {},
          env: envOf(raw.traefik?.env),
        }
      : isKamal2 && traefikRoles.length
        ? { image: raw.traefik?.image ?? DEFAULT_TRAEFIK_IMAGE, hostPort: 80, args: {}, labels: {}, options: {}, env: { clear: {}, secret: [] } }
        : undefined;
  if (isKamal2 && raw.traefik) problems.push({ path: "traefik", message: "cannot be combined with proxy (Kamal 2): choose one" });

  const accessories = Object.entries(raw.accessories ?? {}).map(([name, a]) =>
    accessoryOf(raw.service, name, a, roles, problems, ctx.appRoot ?? process.cwd()),
  );

  const registry = raw.registry
    ? { server: server ?? "docker.io", username: refOf(raw.registry.username), password: refOf(raw.registry.password) }
    : undefined;
  const keyDataSecrets = raw.ssh?.key_data ?? [];
  const secretNames = new Set<string>([
    ...globalEnv.secret,
    ...roles.flatMap((r) => r.hosts.flatMap((h) => h.env.secret)),
    ...(traefik?.env.secret ?? []),
    ...accessories.flatMap((a) => a.env.secret),
    ...keyDataSecrets,
  ]);
  if (registry) for (const r of [registry.username, registry.password]) if ("secret" in r) secretNames.add(r.secret);

  if (problems.length) throw new ConfigError(problems);
  const proxyUser = raw.ssh?.proxy?.includes("@") ? raw.ssh.proxy.split("@")[0] : undefined;
  const proxyHost = raw.ssh?.proxy?.split("@").pop();
  return {
    service: raw.service,
    image,
    destination: ctx.destination,
    registry,
    ssh: {
      user: raw.ssh?.user,
      port: raw.ssh?.port,
      proxy: proxyHost ? { host: proxyHost.split(":")[0], user: proxyUser, port: proxyHost.includes(":") ? Number(proxyHost.split(":")[1]) : undefined } : undefined,
      keyPaths: raw.ssh?.keys ?? [],
      keyDataSecrets,
    },
    roles,
    primaryRole: primaryRole ?? "web",
    env: globalEnv,
    volumes: raw.volumes ?? [],
    labels: raw.labels ?? {},
    traefik,
    accessories,
    boot: { limit: raw.boot?.limit, wait: raw.boot?.wait },
    stopWaitTime: raw.drain_timeout ?? raw.stop_wait_time,
    retainContainers: raw.retain_containers,
    logging: raw.logging,
    secretNames: [...secretNames].sort(),
    warnings,
  };
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

function mergeEnv(a: KamalEnv, b: KamalEnv): KamalEnv {
  return { clear: { ...a.clear, ...b.clear }, secret: [...new Set([...a.secret, ...b.secret])] };
}

function seconds(d: number | string | undefined, fallback: number): number {
  if (d === undefined) return fallback;
  if (typeof d === "number") return d;
  const n = parseFloat(d);
  return d.endsWith("ms") ? n / 1000 : d.endsWith("m") ? n * 60 : n;
}

function rolesOf(raw: Raw, isKamal2: boolean, globalEnv: KamalEnv, problems: ConfigProblem[], warnings: string[]): KamalRole[] {
  const servers = Array.isArray(raw.servers) ? { web: raw.servers } : raw.servers;
  const tagEnv = isEnvBlock(raw.env) ? (raw.env as { tags?: Record<string, unknown> }).tags ?? {} : {};
  const out: KamalRole[] = [];
  for (const [name, spec] of Object.entries(servers)) {
    const r = Array.isArray(spec) ? { hosts: spec } : spec;
    const at = `servers.${name}`;
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) problems.push({ path: at, message: "role names may contain only letters, digits, '_', '.', '-'" });
    const roleEnv = mergeEnv(globalEnv, envOf(r.env));
    const hosts: KamalHost[] = (r.hosts ?? []).map((h, i) => {
      const [address, tags] = typeof h === "string" ? [h, [] as string[]] : Object.entries(h).map(([a, t]) => [a, Array.isArray(t) ? t : [t]] as const)[0];
      let env = roleEnv;
      for (const tag of tags) {
        const te = tagEnv[tag];
        if (te === undefined) {
          problems.push({ path: `${at}.hosts.${i}`, message: `tag "${tag}" has no env.tags.${tag}` });
          continue;
        }
        env = mergeEnv(env, isEnvBlock(te) ? { clear: (te as { clear?: Record<string, string> }).clear ?? {}, secret: (te as { secret?: string[] }).secret ?? [] } : { clear: te as Record<string, string>, secret: [] });
      }
      return { address, tags: [...tags], env };
    });
    if (hosts.length === 0) {
      warnings.push(`${at}: has no hosts; skipped`);
      continue;
    }
    const proxyRole = r.proxy;
    const behindProxy = isKamal2 ? (proxyRole === undefined ? name === "web" : proxyRole !== false) : undefined;
    const traefik = isKamal2 ? behindProxy! : r.traefik === undefined ? name === "web" : r.traefik !== false;
    if (isPlain(r.traefik)) warnings.push(`${at}.traefik: role-level Traefik settings are not used; put labels under ${at}.labels`);
    if (typeof r.proxy === "object") warnings.push(`${at}.proxy: role-level proxy settings are not used; the top-level proxy applies`);

    const hc = { ...(raw.healthcheck ?? {}), ...(r.healthcheck ?? {}) };
    if (hc.cord !== undefined && hc.cord !== "/tmp/kamal-cord") warnings.push(`${at}.healthcheck.cord: a custom cord path is not supported (/tmp/kamal-cord is used)`);
    if (hc.log_lines !== undefined) warnings.push(`${at}.healthcheck.log_lines: not used (the last 30 lines are shown)`);
    if (hc.exposed_port !== undefined) warnings.push(`${at}.healthcheck.exposed_port: not used`);
    const p = raw.proxy;
    const appPort = isKamal2 ? p?.app_port ?? 80 : hc.port ?? 3000;
    let healthcheck: KamalRole["healthcheck"];
    if (isKamal2) {
      const interval = seconds(p?.healthcheck?.interval, 1);
      healthcheck = traefik || r.healthcheck
        ? { path: p?.healthcheck?.path ?? "/up", port: appPort, cmd: r.healthcheck?.cmd, interval, deadline: raw.deploy_timeout ?? 30 }
        : undefined;
    } else if (traefik || r.healthcheck) {
      const attempts = hc.max_attempts ?? 7;
      // Kamal 1 polls max_attempts times with a linearly growing pause (1s, 2s, …).
      healthcheck = { path: hc.path ?? "/up", port: appPort, cmd: hc.cmd, interval: seconds(hc.interval, 1), deadline: raw.deploy_timeout ?? (attempts * (attempts + 1)) / 2 };
    }
    const labels = { ...(raw.labels ?? {}), ...(r.labels ?? {}) };
    if (isKamal2 && traefik && (p?.host || p?.hosts)) {
      const hostsRule = [...(p.host ? [p.host] : []), ...(p.hosts ?? [])].map((h) => `Host(\`${h}\`)`).join(" || ");
      const router = [raw.service, name].join("-");
      labels[`traefik.http.routers.${router}.rule`] ??= hostsRule;
    }
    out.push({
      name,
      hosts,
      cmd: r.cmd,
      options: r.options ?? {},
      labels,
      traefik,
      appPort,
      healthcheck,
      logging: r.logging ?? raw.logging,
    });
  }
  if (raw.proxy) {
    for (const key of ["ssl", "ssl_redirect", "response_timeout", "forward_headers", "buffering", "logging", "path_prefix", "strip_path_prefix", "run"] as const) {
      if (raw.proxy[key] !== undefined) warnings.push(`proxy.${key}: not supported with Traefik (configure Traefik args and labels instead)`);
    }
    if (raw.proxy.healthcheck?.timeout !== undefined) warnings.push("proxy.healthcheck.timeout: not used (curl inside the container probes health)");
  }
  return out;
}

function accessoryOf(
  service: string,
  name: string,
  a: z.output<typeof accessory>,
  roles: KamalRole[],
  problems: ConfigProblem[],
  appRoot: string,
): KamalAccessory {
  const at = `accessories.${name}`;
  const hosts = [
    ...(a.host ? [a.host] : []),
    ...(a.hosts ?? []),
    ...(a.roles ?? []).flatMap((r) => {
      const role = roles.find((x) => x.name === r);
      if (!role) problems.push({ path: `${at}.roles`, message: `names no role with hosts: ${r}` });
      return role?.hosts.map((h) => h.address) ?? [];
    }),
  ];
  if (hosts.length === 0) problems.push({ path: `${at}`, message: "needs host, hosts or roles" });
  if (a.registry) problems.push({ path: `${at}.registry`, message: "is not supported: use an image the service's registry (or a public one) serves" });
  if (a.proxy) problems.push({ path: `${at}.proxy`, message: "is not supported" });
  const files = (a.files ?? []).map((spec, i) => {
    const [source, target] = spec.split(":");
    const local = path.resolve(appRoot, source);
    if (!existsSync(local)) {
      problems.push({ path: `${at}.files.${i}`, message: `${source} does not exist (relative to ${appRoot})` });
      return { source, target, content: "" };
    }
    return { source, target, content: readFileSync(local, "utf8") };
  });
  return {
    name,
    containerName: a.service ?? `${service}-${name}`,
    image: a.image,
    hosts: [...new Set(hosts)],
    port: a.port,
    cmd: a.cmd,
    env: envOf(a.env),
    files,
    directories: a.directories ?? [],
    volumes: a.volumes ?? [],
    options: a.options ?? {},
    labels: a.labels ?? {},
  };
}

/**
 * deploy.yml as Kamal 1.9 and 2.x accept it: every key, its type, and (for keys with no
 * meaning here) why. Parsing only; what each key becomes is ./sections.ts and ./config.ts.
 */
import { name as nameSchema, runDirectoryPath } from "../provider/config/values";
import { z } from "zod";
import { builderSchema } from "./builder";

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);
/** YAML scalars as strings; an empty value (null, as from an empty ERB) is "". */
export const scalarMap = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean(), z.null()], { error: "must be a string, number or boolean" }).transform((v) => (v === null ? "" : String(v))),
);
/** Secret env names; Kamal 2's "NAME:SECRET" sets NAME from the secret SECRET. */
export const nameList = z.array(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z_][A-Za-z0-9_]*)?$/, { message: 'must be an environment variable name, or "NAME:SECRET_NAME"' }),
);
/** A value or, as a one-element list, the name of a secret holding it (Kamal's convention). */
export const valueOrSecret = z.union([scalar, z.array(z.string()).length(1, { message: "must name exactly one secret" })]);

/** An empty value (YAML null, as ERB that printed nothing leaves) counts as absent. */
export const orAbsent = <T extends z.ZodType>(t: T) => z.preprocess((v) => (v === null ? undefined : v), t.optional());

export const envBlock = z.strictObject({ clear: scalarMap.optional(), secret: nameList.optional() });
export const env = z.union([
  z.strictObject({ clear: scalarMap.optional(), secret: nameList.optional(), tags: z.record(z.string(), z.union([envBlock, scalarMap])).optional() }),
  scalarMap,
]);

export const duration = z.union([z.number(), z.string().regex(/^\d+(\.\d+)?(ms|s|m)?$/, { message: 'must be seconds or a duration like "10s"' })]);

export const healthcheck = z.strictObject({
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
export const byteCount = z.union([z.number().int().nonnegative(), z.string().regex(/^\d[\d_]*$/, { message: "must be a number of bytes" }).transform((v) => Number(v.replace(/_/g, "")))]);

export const options = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]));

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: "must be an HTTP header name" });

export const proxy = z.strictObject({
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
  logging: z.strictObject({ request_headers: z.array(headerName).optional(), response_headers: z.array(headerName).optional() }).optional(),
  path_prefix: z.string().optional(),
  path_prefixes: z.array(z.string()).optional(),
  strip_path_prefix: z.boolean().optional(),
  run: z
    .strictObject({
      http_port: z.number().int().min(1).max(65535).optional(),
      https_port: z.number().int().min(1).max(65535).optional(),
      metrics_port: z.number().int().min(1).max(65535).optional(),
      debug: z.boolean().optional(),
      log_max_size: z.string().optional(),
      publish: z.boolean().optional(),
      bind_ips: z.array(z.string()).optional(),
      registry: z.string().optional(),
      repository: z.string().optional(),
      version: z.string().optional(),
      options: options.optional(),
    })
    .optional(),
});

/** A host: "1.2.3.4", or `{ "1.2.3.4": "tag" }` / `{ "1.2.3.4": [tags] }`. */
export const hostEntry = z.union([
  z.string(),
  z.record(z.string(), z.union([z.string(), z.array(z.string())])).refine((o) => Object.keys(o).length === 1, {
    message: "must map one host to its tags",
  }),
]);

export const logging = z.strictObject({ driver: z.string().optional(), options: scalarMap.optional() });

export const role = z.strictObject({
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
export const pathConfig = (shape: string) =>
  z.union([
    z.string().regex(/^[^:]+:\/[^:]*(:[a-zA-Z,]+)?$/, { message: `must be "${shape}"` }),
    z.strictObject({ local: z.string(), remote: z.string().startsWith("/"), mode: z.union([z.string(), z.number()]).optional(), owner: z.string().optional(), options: z.string().optional() }),
  ]);

export function pathSpec(p: string | { local: string; remote: string; mode?: string | number; owner?: string; options?: string }): { local: string; remote: string; options?: string; mode?: string; owner?: string } {
  if (typeof p !== "string") return { local: p.local, remote: p.remote, options: p.options, mode: p.mode === undefined ? undefined : String(p.mode).padStart(4, "0"), owner: p.owner };
  const [local, remote, options] = p.split(":");
  return { local, remote, options };
}

/** A registry: the service's, or an accessory's own (Kamal 2). */
export const registryConfig = z.strictObject({ server: z.string().optional(), username: orAbsent(valueOrSecret), password: orAbsent(valueOrSecret) });

export const accessory = z.strictObject({
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
  proxy: proxy.optional(),
});

/** Kamal keys about building images or driving the kamal CLI: they change nothing here. */
export const NOT_USED: Record<string, string> = {
  hooks_output: "a hook's output is always shown, as progress lines",
  output: "kamal CLI output settings",
};

export const root = z.strictObject({
  service: z.string().refine((s) => nameSchema.safeParse(s).success, { message: "must contain only letters, digits, '_', '.', '-'" }),
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
      forward_agent: z.boolean().optional(),
      log_level: z.string().optional(),
      config: z.union([z.boolean(), z.string(), z.array(z.string())]).optional(),
    })
    .optional(),
  healthcheck: healthcheck.optional(),
  sshkit: z
    .strictObject({
      max_concurrent_starts: z.number().int().min(1, { message: "must be at least 1" }).optional(),
      pool_idle_timeout: z.number().min(0).optional(),
      dns_retries: z.number().int().min(0).optional(),
    })
    .optional(),
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
  run_directory: runDirectoryPath.optional(),
  error_pages_path: z.string().optional(),
  hooks_path: z.string().optional(),
  asset_path: z.string().optional(),
  allow_empty_roles: z.boolean().optional(),
  builder: builderSchema.optional(),
  require_destination: z.boolean().optional(),
  aliases: z.record(z.string().regex(/^[a-z0-9_-]+$/i, { message: "must be a command name: letters, digits, '_' or '-'" }), z.string().min(1)).optional(),
  minimum_version: z.union([z.string(), z.number()]).optional(),
  ...Object.fromEntries(Object.keys(NOT_USED).map((k) => [k, z.unknown().optional()])),
});

export type Raw = z.output<typeof root>;

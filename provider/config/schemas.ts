/**
 * What each resource accepts once Pulumi has resolved its inputs. Stage 1 is shape and
 * defaults (strict objects: a misspelt key is an error); stage 2 is cross-field rules.
 */
import { z } from "zod";

/** Seconds, from a number or "500ms" / "10s" / "2m" (Kamal writes both). */
export const duration = z.union([
  z.number().nonnegative(),
  z
    .string()
    .regex(/^\d+(\.\d+)?(ms|s|m)$/, { message: 'must be a number of seconds or a duration like "10s", "500ms", "2m"' })
    .transform((s) => {
      const n = parseFloat(s);
      return s.endsWith("ms") ? n / 1000 : s.endsWith("m") ? n * 60 : n;
    }),
]);

/** Service, role and accessory names end up in container names and labels. */
export const name = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { message: "must start with a letter or digit and contain only letters, digits, '_', '.', '-'" });

/** A Docker image reference without its tag. */
export const imageName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._\-/:]*[a-z0-9]$/, { message: "must be an image name without a tag (e.g. registry.example.com/app)" })
  // A colon after the last "/" is a tag; one before it is a registry port.
  .refine((s) => !/:[^/]*$/.test(s), { message: "must not include a tag: set the version separately" });

/** A Docker tag. */
export const version = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, { message: "must be a valid Docker tag (letters, digits, '_', '.', '-', at most 128)" });

export const envKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "must be a valid environment variable name" });

/** Env values travel in env files, one per line: a newline cannot be represented. */
export const envMap = z.record(
  envKey,
  z.string().refine((v) => !/[\r\n\0]/.test(v), { message: "must not contain a newline or NUL" }),
);

const port = z.number().int().min(1).max(65535);

export const sshConnection: z.ZodType<SshConnectionConfig> = z.lazy(() =>
  z.strictObject({
    host: z.string().min(1),
    port: port.default(22),
    user: z.string().min(1).default("root"),
    privateKey: z.string().optional(),
    privateKeyPath: z.string().optional(),
    passphrase: z.string().optional(),
    password: z.string().optional(),
    agent: z.union([z.string(), z.boolean()]).optional(),
    knownHosts: z.string().optional(),
    knownHostsPath: z.string().optional(),
    hostKey: z.string().optional(),
    insecureIgnoreHostKey: z.boolean().default(false),
    proxy: sshConnection.optional(),
    connectTimeout: duration.default(15),
    keepaliveInterval: duration.default(15),
    dialAttempts: z.number().int().min(1).max(10).default(3),
    maxChannels: z.number().int().min(1).max(64).default(8),
  }),
) as never;

export interface SshConnectionConfig {
  host: string;
  port: number;
  user: string;
  privateKey?: string;
  privateKeyPath?: string;
  passphrase?: string;
  password?: string;
  agent?: string | boolean;
  knownHosts?: string;
  knownHostsPath?: string;
  hostKey?: string;
  insecureIgnoreHostKey: boolean;
  proxy?: SshConnectionConfig;
  connectTimeout: number;
  keepaliveInterval: number;
  dialAttempts: number;
  maxChannels: number;
}

export const registry = z.strictObject({
  server: z.string().min(1),
  username: z.string().min(1),
  password: z.string().min(1),
});

/** docker run options: `{ cpus: 2, "add-host": ["a:1.2.3.4"], init: true }`. */
export const dockerOptions = z.record(
  z.string().regex(/^[a-z][a-z0-9-]*$/, { message: "must be a docker option name without dashes, e.g. add-host" }),
  z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]),
);

export const logging = z.strictObject({
  driver: z.string().optional(),
  options: z.record(z.string(), z.string()).default({}),
});

export const healthcheck = z.strictObject({
  /** HTTP path probed inside the container (with curl) when no cmd is given. */
  path: z.string().startsWith("/", { message: 'must start with "/"' }).default("/up"),
  port: port.default(80),
  /** A command run inside the container instead of the HTTP probe. */
  cmd: z.string().min(1).optional(),
  interval: duration.default(1),
  retries: z.number().int().min(1).max(100).default(3),
  /** How long a new container has to become healthy. */
  deadline: duration.default(60),
});

const cmd = z.union([z.string().min(1), z.array(z.string()).min(1)]);

export const appContainer = z
  .strictObject({
    configPath: z.string().default(""),
    hostName: z.string().min(1),
    connection: sshConnection,
    service: name,
    role: name,
    destination: name.optional(),
    image: imageName,
    version,
    registry: registry.optional(),
    cmd: cmd.optional(),
    env: envMap.default({}),
    envFile: z.strictObject({ path: z.string().min(1), hash: z.string() }).optional(),
    labels: z.record(z.string().min(1), z.string()).default({}),
    volumes: z.array(z.string().regex(/^[^:]+:[^:]+(:[a-z,]+)?$/, { message: 'must be "host_path:container_path[:options]"' })).default([]),
    options: dockerOptions.default({}),
    logging: logging.optional(),
    traefik: z.boolean().default(false),
    appPort: port.default(80),
    healthcheck: healthcheck.optional(),
    stopWaitTime: duration.default(30),
    retain: z.number().int().min(0).max(100).default(5),
    /** Seconds to wait before swapping (a later boot batch). */
    bootDelay: duration.default(0),
  })
  // Stage 2: cross-field rules, checked even when other fields are wrong.
  .refine((v) => !(v.traefik && !v.healthcheck), {
    path: ["healthcheck"],
    message: "is required for a role behind Traefik (traffic only moves to a healthy container)",
    when: (payload) => typeof payload.value === "object" && payload.value !== null,
  });
export type AppContainerConfig = z.output<typeof appContainer>;

export const traefikContainer = z.strictObject({
  configPath: z.string().default(""),
  hostName: z.string().min(1),
  connection: sshConnection,
  image: z.string().min(1),
  registry: registry.optional(),
  /** Host ports published to Traefik's entrypoint on container port 80: Kamal's host_port. */
  hostPort: z.union([port, z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}:)?\d+(:\d+)?(\/(tcp|udp))?$/)]).default(80),
  /** Traefik API port, published on the host's 127.0.0.1 only; 0 turns the API off. */
  apiPort: z.number().int().min(0).max(65535).default(8080),
  args: z.record(z.string().min(1), z.union([z.string(), z.number(), z.boolean()])).default({}),
  labels: z.record(z.string().min(1), z.string()).default({}),
  options: dockerOptions.default({}),
  env: envMap.default({}),
  envFile: z.strictObject({ path: z.string().min(1), hash: z.string() }).optional(),
});
export type TraefikContainerConfig = z.output<typeof traefikContainer>;

export const envFile = z.strictObject({
  configPath: z.string().default(""),
  hostName: z.string().min(1),
  connection: sshConnection,
  /** Path on the host; relative paths are under the SSH user's home. */
  path: z.string().min(1).refine((p) => !p.split("/").includes(".."), { message: 'must not contain ".."' }),
  env: envMap,
});
export type EnvFileConfig = z.output<typeof envFile>;

const accessoryFile = z.strictObject({
  /** Path inside the container. */
  target: z.string().startsWith("/", { message: 'must be an absolute path inside the container' }),
  content: z.string(),
  mode: z.string().regex(/^0?[0-7]{3}$/, { message: 'must be an octal mode like "0644"' }).default("0644"),
});

export const accessoryContainer = z.strictObject({
  configPath: z.string().default(""),
  hostName: z.string().min(1),
  connection: sshConnection,
  service: name,
  name,
  /** Container name when not "<service>-<name>" (Kamal's accessory `service` key). */
  containerName: name.optional(),
  image: z.string().min(1),
  registry: registry.optional(),
  /** "5432", "5432:5432" or "127.0.0.1:5432:5432". */
  port: z.union([port, z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}:)?\d+(:\d+)?(\/(tcp|udp))?$/, { message: 'must be like "5432", "5432:5432" or "127.0.0.1:5432:5432"' })]).optional(),
  cmd: cmd.optional(),
  env: envMap.default({}),
  envFile: z.strictObject({ path: z.string().min(1), hash: z.string() }).optional(),
  files: z.array(accessoryFile).default([]),
  /** "host_dir:container_path"; host_dir relative to the accessory's data directory. */
  directories: z.array(z.string().regex(/^[^:]+:\/[^:]*$/, { message: 'must be "host_dir:/container/path"' })).default([]),
  volumes: z.array(z.string().regex(/^[^:]+:[^:]+(:[a-z,]+)?$/, { message: 'must be "host_path:container_path[:options]"' })).default([]),
  options: dockerOptions.default({}),
  labels: z.record(z.string().min(1), z.string()).default({}),
  stopWaitTime: duration.default(30),
  /** Delete the data directory when the accessory is destroyed. Off by default. */
  deleteDataOnDestroy: z.boolean().default(false),
});
export type AccessoryContainerConfig = z.output<typeof accessoryContainer>;

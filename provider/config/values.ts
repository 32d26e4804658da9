/**
 * The value types the resources' schemas share: durations, names, images and versions, env,
 * ports and byte counts, route settings, maintenance, the SSH connection (declared once),
 * registry, logging and the health check. Each carries its own exact error message.
 */
import { z } from "zod";
import { secret, record, replace } from "./declare";

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

/** An image's content digest, as a registry names it. */
export const imageDigest = z.string().regex(/^sha256:[0-9a-f]{64}$/, { message: 'must be an image digest, "sha256:" and 64 hex digits' });

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

export const port = z.number().int().min(1).max(65535);

/** A host name Traefik routes by (Kamal 2's proxy.host). */
export const routeHost = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, { message: "must be a host name like app.example.com" });

/** A size in bytes: a number, or "40_000_000", "512KB", "10MB", "1GB" (powers of 1000, as
 * kamal-proxy counts them; "KiB", "MiB", "GiB" for powers of 1024). */
export const bytes = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d[\d_]*(\.\d+)?\s*([kmg]i?b?|b)?$/i, { message: 'must be a number of bytes or a size like "10MB"' })
    .transform((s) => {
      const m = /^([\d_.]+)\s*([kmg]?)(i?)/i.exec(s)!;
      const power = { "": 0, k: 1, m: 2, g: 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
      return Math.round(parseFloat(m[1].replace(/_/g, "")) * (m[3] ? 1024 : 1000) ** power);
    }),
]);

/** A path prefix a role is served under (Kamal 2's proxy.path_prefix). */
export const pathPrefix = z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, { message: 'must be a URL path starting with "/", e.g. "/api"' });

/** PEM text of one kind: a certificate (chain) or a private key. */
export const pem = (kind: "CERTIFICATE" | "PRIVATE KEY") =>
  z.string().refine((v) => new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(v), { message: `must be PEM text (-----BEGIN ${kind}-----)` });

/**
 * How the host's Traefik serves a role, beyond which host names reach it (Kamal 2's `proxy`
 * settings). Each of these only rewrites the scope's route file: the containers keep serving.
 */
export const routeOptions = z.strictObject({
  /** HTTPS: true for a certificate from the Traefik's ACME resolver (Let's Encrypt), or a
   * certificate and key of your own (Kamal 2's `ssl.certificate_pem`/`private_key_pem`). */
  ssl: z.union([z.boolean(), z.strictObject({ certificatePem: pem("CERTIFICATE"), privateKeyPem: secret(pem("PRIVATE KEY")) })]).default(false),
  /** With ssl, plain HTTP requests are redirected to HTTPS (default true, as Kamal 2). */
  sslRedirect: z.boolean().default(true),
  /** Served only under these path prefixes (Kamal 2's path_prefix). */
  pathPrefixes: z.array(pathPrefix).default([]),
  /** The prefix is removed before the request reaches the app (default true, as Kamal 2). */
  stripPathPrefix: z.boolean().default(true),
  /** A request whose response has not begun within this long gets 504 (Kamal 2's
   * response_timeout, 30 s there); none by default. */
  responseTimeout: duration.optional(),
  /** Request and response bodies buffered by Traefik, a request body over maxRequestBody
   * refused with 413 (Kamal 2's buffering). */
  buffering: z
    .strictObject({
      maxRequestBody: bytes.optional(),
      maxResponseBody: bytes.optional(),
      /** Bodies up to this size are buffered in memory, larger ones on disk (default 1MB). */
      memory: bytes.default(1_000_000),
    })
    .optional(),
  /** Whether the app sees the X-Forwarded-* headers a client (a load balancer in front)
   * sent: true needs the host's Traefik to trust them (its forwardedHeaders); false strips
   * them where it does. Unset: as the Traefik decides. */
  forwardHeaders: z.boolean().optional(),
});
export type RouteOptionsInput = z.input<typeof routeOptions>;

/** Maintenance mode: Traefik answers the role's requests with 503 and a page while its
 * containers keep running. */
export const maintenance = z.strictObject({
  /** Shown on the default page (Kamal's `kamal app maintenance --message`). */
  message: z.string().optional(),
  /** A whole HTML page instead of the default one (Kamal 2's error_pages_path 503.html);
   * `{{ .Message }}` in it is replaced by the message. */
  page: z.string().optional(),
});
export type MaintenanceInput = z.input<typeof maintenance>;

/** How to reach a host (or a bastion) over SSH. Only the address decides where a resource is. */
export const sshFields = {
  /** Address of the host. A new address moves the resource. */
  host: replace(z.string().min(1)),
  /** SSH port (default 22). */
  port: port.default(22),
  /** SSH user (default "root"). */
  user: z.string().min(1).default("root"),
  /** Private key text. */
  privateKey: secret(z.string().optional()),
  /** Path to a private key file on the machine running Pulumi. */
  privateKeyPath: z.string().optional(),
  /** More private keys (text), tried in order after privateKey (Kamal's key_data). */
  privateKeys: secret(z.array(z.string().min(1)).optional()),
  /** More private key files, tried in order after privateKeyPath (Kamal's keys). */
  privateKeyPaths: z.array(z.string().min(1)).optional(),
  /** Only the keys given: the agent's identities are not offered (Kamal's keys_only). */
  keysOnly: z.boolean().default(false),
  /** Forward the local ssh-agent (`agent`) to the commands run on the host (Kamal's
   * forward_agent): a command there may then use the agent's keys, e.g. for git over SSH. */
  forwardAgent: z.boolean().default(false),
  /** Passphrase of the private key. */
  passphrase: secret(z.string().optional()),
  /** Password authentication. */
  password: secret(z.string().optional()),
  /** Use an ssh-agent: a socket path, or true for $SSH_AUTH_SOCK. */
  agent: z.union([z.string(), z.boolean()]).optional(),
  /** known_hosts text covering the hosts. */
  knownHosts: z.string().optional(),
  /** Path to a known_hosts file (e.g. ~/.ssh/known_hosts expanded). */
  knownHostsPath: z.string().optional(),
  /** The host's public key, "ssh-ed25519 AAAA…": pins it without a known_hosts file. */
  hostKey: z.string().optional(),
  /** Accept any host key. Never the default; only for throwaway hosts. */
  insecureIgnoreHostKey: z.boolean().default(false),
  /** Connect timeout, seconds or "15s" (default 15). */
  connectTimeout: duration.default(15),
  /** Keepalive interval, seconds or "5s" (default 5): three unanswered keepalives mark the
   * connection lost, so a cut network is noticed within about 15 s. */
  keepaliveInterval: duration.default(5),
  /** Connection attempts before giving up (default 3). */
  dialAttempts: z.number().int().min(1).max(10).default(3),
  /** Concurrent commands on the one connection (default 8). */
  maxChannels: z.number().int().min(1).max(64).default(8),
  /** Connections being opened at once by one process, to every host (Kamal's
   * sshkit.max_concurrent_starts; default 30, as Kamal's): a fleet's handshakes queue
   * rather than time out together. */
  maxConcurrentStarts: z.number().int().min(1).max(1000).optional(),
};

/** A bastion (jump host): the same keys as a host, without a bastion of its own. A change
 * to it moves nothing: it is only the way in. */
export const sshBastion = z.strictObject({ ...sshFields, host: z.string().min(1) });

/** How long each kind of remote step may take, in seconds or "30s". A step past its deadline
 * fails naming the host, the step and the command. */
export const deadlines = z.strictObject({
  /** Read-only steps: inspect, list, poll, Traefik API queries (default 30). */
  read: duration.default(30),
  /** Changes: run, rename, start, write, remove (default 120); a stop adds its stop wait. */
  change: duration.default(120),
  /** Image pulls and registry logins (default 600). */
  pull: duration.default(600),
  /** A dropped connection is dialled again for this long before the step fails (default 60). */
  reconnect: duration.default(60),
});

export const sshConnection = z.strictObject({
  ...sshFields,
  /** Deadlines of remote steps and the reconnect window. */
  deadlines: deadlines.prefault({}),
  /** A bastion (jump host) to connect through. */
  proxy: sshBastion.optional(),
  /** Instead of a TCP connection or a bastion: a command on the machine running Pulumi whose
   * stdin and stdout carry the connection, as OpenSSH's ProxyCommand (run with sh; `%h` host,
   * `%p` port, `%r` user, `%%` a percent sign), e.g. `cloudflared access ssh --hostname %h`. */
  proxyCommand: z.string().min(1).optional(),
});
export type SshConnectionConfig = z.output<typeof sshConnection>;
/** The same connection where the address moves nothing (what runs there is not kept). */
export const sshConnectionAnywhere = sshConnection.extend({ host: z.string().min(1) });
export type SshConnectionInput = z.input<typeof sshConnection>;
export type SshBastionInput = z.input<typeof sshBastion>;

export const registry = z.strictObject({
  /** Registry host, e.g. "ghcr.io" or "registry.example.com:5000". */
  server: z.string().min(1),
  username: z.string().min(1),
  /** Sent to `docker login` on stdin, never on a command line. */
  password: secret(z.string().min(1)),
});
export type RegistryInput = z.input<typeof registry>;

/** docker run options: `{ cpus: 2, "add-host": ["a:1.2.3.4"], init: true }`. */
export const dockerOptions = z.record(
  z.string().regex(/^[a-z][a-z0-9-]*$/, { message: "must be a docker option name without dashes, e.g. add-host" }),
  z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]),
);

export const logging = z.strictObject({
  driver: z.string().optional(),
  options: z.record(z.string(), z.string()).default({}),
});
export type LoggingInput = z.input<typeof logging>;

/** Where Kamal 1 mounts a container's cord unless `healthcheck.cord` says otherwise. */
export const KAMAL_CORD = "/tmp/kamal-cord";

export const healthcheck = z.strictObject({
  /** HTTP path probed inside the container (with curl) when no cmd is given (default "/up"). */
  path: z.string().startsWith("/", { message: 'must start with "/"' }).default("/up"),
  /** Port of that probe (default: the role's appPort, else 80). */
  port: port.default(80),
  /** A command run inside the container instead of the HTTP probe. */
  cmd: z.string().min(1).optional(),
  /** Docker health-check interval, seconds or "1s" (default 1). */
  interval: duration.default(1),
  /** How long one probe may take, seconds or "5s" (default 5, as Kamal 2's proxy): a slower
   * answer counts as a failure. */
  timeout: duration.default(5),
  /** Consecutive failures before Docker calls it unhealthy (default 3). */
  retries: z.number().int().min(1).max(100).default(3),
  /** How long a new container has to become healthy, seconds or "60s" (default 60). */
  deadline: record(duration.default(60)),
  /** Kamal 1's cord, for a role routed by its labels: the directory in the container whose
   * `cord` file the health check also needs (cutting it takes the container out of rotation
   * before it stops), or false for none, as Kamal: the old container then leaves rotation only
   * when it stops. Default /tmp/kamal-cord. */
  cord: z.union([z.string().regex(/^\/[A-Za-z0-9._/-]*$/, { message: "must be an absolute path inside the container" }), z.literal(false)]).default(KAMAL_CORD),
  /** Lines of the container's log a failed start shows (default 30; Kamal 1's `log_lines`). */
  logLines: record(z.number().int().min(1).max(10_000).default(30)),
});
export type HealthcheckInput = z.input<typeof healthcheck>;

/** Kamal's `run_directory`: where the deploy lock, the audit log, env files, cords, asset
 * volumes and the proxy's files live on a host, relative to the SSH user's home unless
 * absolute (default `.kamal`). */
export const RUN_DIRECTORY = ".kamal";
export const runDirectoryPath = z
  .string()
  .regex(/^(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._/-]+$/, { message: 'must be a directory path of letters, digits, ".", "_", "-" and "/" (no "..")' });
export const runDirectory = runDirectoryPath.default(RUN_DIRECTORY);

/** A run directory as paths are built from it: without a trailing slash ("/" stays "/"). */
export function trimmedRunDirectory(dir: string): string {
  return dir.replace(/\/+$/, "") || "/";
}

export const cmd = z.union([z.string().min(1), z.array(z.string()).min(1)]);

export const envFileRef = z.strictObject({ path: z.string().min(1), hash: z.string() });

export const volume = z.string().regex(/^[^:]+:[^:]+(:[a-z,]+)?$/, { message: 'must be "host_path:container_path[:options]"' });

/**
 * What each resource accepts: the single source of its fields (shared value types in
 * ./values.ts, the declaration helpers in ./declare.ts). A field's type, its default,
 * whether it is a secret, and what changing it does (its effect) are declared here, once;
 * the component argument types, the provider input types, `diff`, `update`, the secrets
 * wrapped by components and the values redacted from errors are all derived from it.
 *
 * Stage 1 is shape and defaults (strict objects: a misspelt key is an error); stage 2 is
 * cross-field rules.
 */
import { z } from "zod";

import { field, reroute, secret, swap, record, replace, restart, reboot, rerun } from "./declare";
import { cmd, dockerOptions, duration, envFileRef, envMap, healthcheck, imageDigest, imageName, logging, maintenance, name, port, registry, routeHost, routeOptions, runDirectory, sshConnection, sshConnectionAnywhere, version, volume } from "./values";

/** A host resource of a rollout: its role, host and phase. A state written by an earlier
 * release has "<role>/<host>@<phase>", read as the same record (so no diff). */
const rolloutMember = z.union([
  z.strictObject({ role: z.string().min(1), host: z.string().min(1), phase: z.number().int().nonnegative() }),
  z
    .string()
    .regex(/^[^/@]+\/[^@]+@\d+$/)
    .transform((m) => {
      const at = m.lastIndexOf("@");
      const slash = m.indexOf("/");
      return { role: m.slice(0, slash), host: m.slice(slash + 1, at), phase: Number(m.slice(at + 1)) };
    }),
]);

export const appContainer = z
  .strictObject({
    /** Name of the host in the program (resource names, outputs, progress lines). */
    hostName: record(z.string().min(1)),
    connection: record(sshConnection),
    /** Service name: containers are `<service>-<role>[-<destination>]-<version>`. */
    service: swap(name),
    /** Role name. */
    role: swap(name),
    /** Kamal destination (staging, production…): its own scope on shared hosts. */
    destination: swap(name.optional()),
    /** Image without tag. */
    image: swap(imageName),
    /** The version (image tag) to run. */
    version: swap(version),
    /** The image's digest (an Image build's): hosts pull exactly it and tag it as the
     * version, so a tag moved in the registry never changes what runs. Unset later: the host
     * keeps what it runs. */
    digest: field(imageDigest.optional(), { effect: "swap", unsetKeeps: true }),
    registry: record(registry.optional()),
    /** Command, as one string (split like a shell would, never interpreted) or argv. */
    cmd: swap(cmd.optional()),
    /** Clear env (visible in `docker inspect`). */
    env: swap(envMap.default({})),
    /** The role's secret env file on the host, and its content hash. */
    envFile: swap(envFileRef.optional()),
    /** Extra container labels. */
    labels: swap(z.record(z.string().min(1), z.string()).default({})),
    /** Volumes, "host:container[:opts]". */
    volumes: swap(z.array(volume).default([])),
    /** Extra docker run options: `{ memory: "1g", "add-host": ["db:10.0.0.3"] }`. */
    options: swap(dockerOptions.default({})),
    /** Logging driver and options (default: the engine's driver with max-size=10m, as Kamal). */
    logging: swap(logging.optional()),
    /** Behind Traefik: routed, and swapped with a drain. */
    traefik: swap(z.boolean().default(false)),
    /** Host names Traefik routes to this role (Kamal 2's proxy.host/hosts); all when empty. */
    routeHosts: reroute(z.array(routeHost).default([])),
    /** How Traefik serves the role: HTTPS, path prefixes, timeouts, buffering, headers. */
    proxy: reroute(routeOptions.prefault({})),
    /** Maintenance mode: Traefik answers with 503 and a page, the containers keep running. */
    maintenance: reroute(maintenance.optional()),
    /** HTML pages by status code ("502", "504"; Kamal 2's error_pages_path) served in place of
     * the errors Traefik itself answers with (the app's own responses pass untouched). */
    errorPages: reroute(z.record(z.string().regex(/^[45][0-9][0-9]$/, { message: "must be a 4xx or 5xx status code" }), z.string().min(1)).optional()),
    /** Port the app listens on inside the container (default 80). */
    appPort: swap(port.default(80)),
    /** Kamal's asset_path: the directory of the image's (fingerprinted) assets, e.g.
     * "/rails/public/assets" (":ro" etc. for mount options). During a swap both versions'
     * assets are served by either container: each new container mounts a host directory with
     * its own assets and the previous version's, and the previous one gets the new ones. */
    assetPath: swap(z.string().regex(/^\/[^:]*(:[a-z,]+)?$/, { message: 'must be an absolute path in the container, e.g. "/rails/public/assets"' }).optional()),
    healthcheck: swap(healthcheck.optional()),
    /** Seconds an old container gets to finish requests after SIGTERM (default 30). */
    stopWaitTime: record(duration.default(30)),
    /** Earlier versions kept stopped on the host, with their images, for rollback without a pull. */
    retain: record(
      z.number().int().min(1, { message: "must be at least 1: going back to the previous version without a pull needs it on the host" }).max(100).default(5),
    ),
    /** Seconds to wait before swapping (a later boot batch). */
    bootDelay: record(duration.default(0)),
    /** After it takes traffic, the new container must stay healthy, without a restart, this
     * long (seconds or "30s"; 0, the default, is no watch). If it does not, the previous
     * container, kept running out of rotation meanwhile, is swapped back in (no pull) and the
     * update fails with the reason and the new container's logs. Later boot batches wait
     * for the watch. */
    watch: record(duration.default(0)),
    /** Set by the Service with `onFailure: "revert"`: the rollout this host's swap is part of
     * (the service, and every host resource with its phase), so that the hosts take turns
     * and, when one fails, every host that switched goes back (handlers/rollout.ts). */
    rollout: record(z.strictObject({ group: z.string().min(1), members: z.array(rolloutMember).min(1) }).optional()),
    /** The role never runs two containers at once (a scheduler, a singleton consumer): the
     * old container is stopped before the new one starts, and started again if the new one
     * fails. */
    exclusive: record(z.boolean().default(false)),
    /** This role is the Service's primary one (Kamal's primary_role) though the default rule
     * ("web", else the first role) would pick another: what `pulumi-kamal -p` and a command
     * without a role mean. */
    primary: record(z.boolean().default(false)),
    /** A role without a health check counts as started once its container has kept running
     * this many seconds (Kamal 2's `readiness_delay`, whose default there is 7). */
    readinessDelay: record(duration.default(2)),
    /** Seconds to wait for the deploy lock another deploy holds before refusing (default 120). */
    lockWait: record(duration.default(120)),
    /** Kamal's run_directory: the lock, audit log, cords and asset volumes (default `.kamal`;
     * a change applies from the next container on). */
    runDirectory: record(runDirectory),
  })
  // Stage 2: cross-field rules, checked even when other fields are wrong.
  .refine((v) => !(v.traefik && !v.healthcheck), {
    path: ["healthcheck"],
    message: "is required for a role behind Traefik (traffic only moves to a healthy container)",
    when: (payload) => typeof payload.value === "object" && payload.value !== null,
  })
  .superRefine((v, ctx) => {
    if (typeof v !== "object" || v === null || !v.proxy?.ssl) return;
    // A certificate is for host names: Kamal 2 refuses ssl without a host too.
    if (!v.routeHosts?.length) ctx.addIssue({ code: "custom", path: ["proxy", "ssl"], message: "needs a host name to serve (proxy.host or proxy.hosts): a certificate is issued for names" });
    else if (v.proxy.ssl === true && v.routeHosts.some((h) => h.startsWith("*."))) {
      ctx.addIssue({ code: "custom", path: ["proxy", "ssl"], message: "cannot get a certificate for a wildcard host name by HTTP or TLS-ALPN challenge: give the certificate (ssl.certificatePem and ssl.privateKeyPem)" });
    }
  });
export type AppContainerConfig = z.output<typeof appContainer>;
export type AppContainerInput = z.input<typeof appContainer>;

const hostPort = z.union([port, z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}:)?\d+(:\d+)?(\/(tcp|udp))?$/, { message: 'must be like "80", "8080:80" or "127.0.0.1:80:80"' })]);

/** Let's Encrypt's production directory (Traefik's default CA server too). */
export const LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory";

const cidr = z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, { message: 'must be an IP address or a CIDR like "10.0.0.0/8"' });

/** Certificates from an ACME CA, kept on the host (`~/.kamal/proxy/acme/acme.json`, mode
 * 0600) across Traefik restarts and upgrades, so none is issued again needlessly. */
export const acme = z.strictObject({
  /** Registered with the CA (expiry notices); none by default. */
  email: z.string().regex(/^[^\s@]+@[^\s@]+$/, { message: "must be an email address" }).optional(),
  /** The CA's ACME directory URL (default Let's Encrypt's production one). */
  caServer: z.string().url({ message: "must be a URL" }).default(LETS_ENCRYPT),
  /** How the CA checks the host names: "http" (HTTP-01 on the web port) or "tls-alpn"
   * (TLS-ALPN-01 on the HTTPS port). */
  challenge: z.enum(["http", "tls-alpn"]).default("http"),
  /** PEM certificates the CA server's own HTTPS certificate chains to, when it is not a
   * public CA (a private ACME server, Pebble). */
  caCertificates: z.string().optional(),
  /** The resolver's name in Traefik (default "letsencrypt", as in Kamal 1's recipe). */
  resolver: name.default("letsencrypt"),
});

export type AcmeInput = z.input<typeof acme>;

export const tls = z.strictObject({
  /** Host port(s) published to the HTTPS entrypoint on container port 443 (default 443). */
  hostPort: z.union([port, z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}:)?\d+$/, { message: 'must be like "443" or "10.0.0.5:443"' })]).default(443),
  /** Every plain HTTP request is redirected to HTTPS, whatever the role (default false: each
   * role with ssl redirects its own, see its sslRedirect). */
  redirect: z.boolean().default(false),
  /** Certificates from an ACME CA for the roles with `ssl: true`. Without it, only roles
   * with their own certificate can serve HTTPS. */
  acme: acme.optional(),
});
export type TlsInput = z.input<typeof tls>;

export const traefikContainer = z.strictObject({
  hostName: record(z.string().min(1)),
  connection: record(sshConnection),
  /** Traefik image with tag, e.g. "traefik:v3.6". */
  image: restart(z.string().min(1)),
  registry: record(registry.optional()),
  /** Host ports published to Traefik's entrypoint on container port 80: Kamal's host_port. */
  hostPort: restart(hostPort.default(80)),
  /** Traefik API port, published on the host's 127.0.0.1 only; 0 turns the API off. */
  apiPort: restart(z.number().int().min(0).max(65535).default(8080)),
  /** Extra Traefik arguments: `{ "accesslog": true, "log.level": "ERROR" }`. The API's own
   * arguments come from apiPort: a swap confirms every route change through the API. */
  args: restart(
    z
      .record(z.string().min(1), z.union([z.string(), z.number(), z.boolean()]))
      .default({})
      .superRefine((args, ctx) => {
        // Traefik's keys are case-insensitive. Values that agree with ours (Kamal 1 configs
        // often repeat them) are fine; turning the API off or moving it is not.
        const agrees: Record<string, (v: unknown) => boolean> = {
          api: (v) => v === true || v === "true",
          "api.insecure": (v) => v === true || v === "true",
          "entrypoints.traefik.address": (v) => v === ":8080",
        };
        for (const [key, value] of Object.entries(args)) {
          const ok = agrees[key.toLowerCase()];
          if (ok && !ok(value)) {
            ctx.addIssue({ code: "custom", path: [key], message: "is set by apiPort: swaps confirm every route change through Traefik's API (apiPort: 0 turns it off; swaps then fall back to Kamal 1's cord)" });
          }
        }
      }),
  ),
  /** HTTPS: an entrypoint on container port 443 published on `hostPort`, and certificates
   * from an ACME resolver (Let's Encrypt by default) for the roles that ask for ssl. */
  tls: restart(tls.optional()),
  /** Trust the X-Forwarded-* headers clients send (Traefik's entrypoint forwardedHeaders):
   * `true` from anyone (Traefik sits behind a load balancer that sets them), or only from
   * these addresses/CIDRs. Default: not trusted, Traefik sets them itself. */
  forwardedHeaders: restart(z.union([z.literal(true), z.array(cidr).min(1)]).optional()),
  labels: restart(z.record(z.string().min(1), z.string()).default({})),
  options: restart(dockerOptions.default({})),
  env: restart(envMap.default({})),
  envFile: restart(envFileRef.optional()),
  /** User-defined Docker networks Traefik joins besides the default bridge (created if
   * missing), to reach apps that run on them: Kamal 2's `kamal`. */
  networks: restart(z.array(name).default([])),
  /** The deploy lock held on the host while Traefik changes is `.kamal/lock-<lockService>[-<destination>]`:
   * KamalApp sets its service, so a `kamal deploy` or `kamal traefik reboot` of that app waits
   * too; two stacks changing one host's Traefik share the default, "traefik". */
  lockService: record(name.default("traefik")),
  destination: record(name.optional()),
  /** When `pulumi-kamal proxy reboot` last asked for this host's Traefik to restart (its
   * time): a new value restarts it, the port handed over. Unset keeps the recorded one (a
   * checkout without the operator's config restarts nothing). */
  rebooted: restart(z.string().min(1).optional()),
  /** Seconds to wait for that lock when another deploy holds it, before refusing (default 120). */
  lockWait: record(duration.default(120)),
  /** Kamal's run_directory: the lock, and the proxy's files (`<run_directory>/proxy/…`:
   * route files, ACME store, plugin) Traefik mounts (default `.kamal`). */
  runDirectory: restart(runDirectory),
  /** Set by the provider, never by a user: the proxy this resource found serving when it was
   * planned (Kamal 1's Traefik, Kamal 2's kamal-proxy), so that the preview says what the
   * first `up` takes over. Kept as first recorded. */
  takeover: record(z.string().optional()),
});
export type TraefikContainerConfig = z.output<typeof traefikContainer>;
export type TraefikContainerInput = z.input<typeof traefikContainer>;

export const envFile = z.strictObject({
  hostName: record(z.string().min(1)),
  connection: record(sshConnection),
  /** Path on the host; relative paths are under the SSH user's home. */
  path: replace(z.string().min(1).refine((p) => !p.split("/").includes(".."), { message: 'must not contain ".."' })),
  /** The variables: every value is a secret. */
  env: field(envMap, { effect: "rewrite", secret: true }),
});
export type EnvFileConfig = z.output<typeof envFile>;
export type EnvFileInput = z.input<typeof envFile>;

/** A host file's or directory's owner: "user[:group]", by name or id. */
const owner = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/, { message: 'must be "user" or "user:group"' });

export const accessoryFile = z.strictObject({
  /** Path inside the container. */
  target: z.string().startsWith("/", { message: "must be an absolute path inside the container" }),
  /** File content (a secret: config files often hold passwords). */
  content: secret(z.string()),
  /** Octal mode (default "0644"). */
  mode: z.string().regex(/^0?[0-7]{3}$/, { message: 'must be an octal mode like "0644"' }).default("0644"),
  /** Mount options, e.g. "ro" (Kamal's "local:remote:options"). */
  options: z.string().regex(/^[a-zA-Z,]+$/, { message: 'must be mount options like "ro"' }).optional(),
  /** Owner of the file on the host, "user[:group]" (names or ids), as Kamal's `owner`. */
  owner: owner.optional(),
});
export type AccessoryFileInput = z.input<typeof accessoryFile>;

const directorySpec = z.string().regex(/^[^:]+:\/[^:]*(:[a-zA-Z,]+)?$/, { message: 'must be "host_dir:/container/path[:options]"' });

/** A directory mounted into an accessory: "host_dir:/container/path[:options]", or that with
 * the host directory's mode and owner (Kamal's directories with `mode`, `owner`). */
export const accessoryDirectory = z.union([
  directorySpec,
  z.strictObject({
    path: directorySpec,
    /** Octal mode of the host directory, e.g. "0700". */
    mode: z.string().regex(/^0?[0-7]{3}$/, { message: 'must be an octal mode like "0700"' }).optional(),
    owner: owner.optional(),
  }),
]);

const publish = z.union([port, z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}:)?\d+(:\d+)?(\/(tcp|udp))?$/, { message: 'must be like "5432", "5432:5432" or "127.0.0.1:5432:5432"' })]);

/** An accessory behind the host's Traefik (Kamal 2's accessory `proxy`): the host names
 * routed to it, the container's port, and the route settings a role takes. */
export const accessoryProxy = routeOptions.extend({
  /** Host names routed to the accessory, e.g. ["grafana.example.com"]. */
  hosts: z.array(routeHost).min(1, { message: "must name at least one host, as Kamal's accessory proxy" }),
  /** The port the accessory's container serves HTTP on (default 80). */
  appPort: port.default(80),
  /** Kamal 2's accessory proxy healthcheck: the route is written only once the container
   * answers `path` with a 2xx (each probe within `timeout`, through the host's SSH
   * connection), within `deadline` (Kamal's deploy_timeout); otherwise the boot fails. */
  healthcheck: z
    .strictObject({
      path: z.string().startsWith("/", { message: 'must start with "/"' }).default("/up"),
      interval: duration.default(1),
      timeout: duration.default(5),
      deadline: duration.default(30),
    })
    .optional(),
});

export const accessoryContainer = z.strictObject({
  hostName: record(z.string().min(1)),
  connection: record(sshConnection),
  /** The service it belongs to: the container is "<service>-<name>". */
  service: reboot(name),
  /** Accessory name. */
  name: reboot(name),
  /** Container name when not "<service>-<name>" (Kamal's accessory `service` key); also names its data directory. */
  containerName: reboot(name.optional()),
  image: reboot(z.string().min(1)),
  registry: record(registry.optional()),
  /** Published port: 5432, "5432:5432" or "127.0.0.1:5432:5432". */
  port: reboot(publish.optional()),
  cmd: reboot(cmd.optional()),
  env: reboot(envMap.default({})),
  envFile: reboot(envFileRef.optional()),
  /** Files uploaded to the accessory's directory on the host and mounted at `target`. */
  files: reboot(z.array(accessoryFile).default([])),
  /** "host_dir:/container/path" (or with the directory's mode and owner); host_dir relative
   * to the accessory's data directory. */
  directories: reboot(z.array(accessoryDirectory).default([])),
  volumes: reboot(z.array(volume).default([])),
  options: reboot(dockerOptions.default({})),
  labels: reboot(z.record(z.string().min(1), z.string()).default({})),
  /** Seconds it gets to stop cleanly (default 30). */
  stopWaitTime: record(duration.default(30)),
  /** Delete the data directory when the accessory is destroyed (default false: kept). */
  deleteDataOnDestroy: record(z.boolean().default(false)),
  /** Kamal destination: a boot, reboot or removal holds the deploy lock
   * `.kamal/lock-<service>[-<destination>]` on the host, as Kamal's accessory commands do. */
  destination: record(name.optional()),
  /** Seconds to wait for that lock when another deploy holds it, before refusing (default 120). */
  lockWait: record(duration.default(120)),
  /** Kamal's run_directory: where that lock and the audit log are (default `.kamal`). */
  runDirectory: record(runDirectory),
  /** Leave the running accessory as it is: a change to what it runs is not applied by this
   * update (the preview and the update say it is pending, and what applies it), as Kamal's
   * deploy never touches accessories. KamalApp sets it unless asked to apply (`pulumi-kamal
   * accessory boot|reboot NAME`); a new accessory is still booted. Not kept in the state. */
  hold: record(z.boolean().default(false)),
  /** Behind the host's Traefik, routed by route file (Kamal 2's accessory `proxy`): a change
   * rewrites the route, the container keeps running. */
  proxy: reroute(accessoryProxy.optional()),
});
export type AccessoryContainerConfig = z.output<typeof accessoryContainer>;
export type AccessoryContainerInput = z.input<typeof accessoryContainer>;

/**
 * A release command (database migrations and the like): run once per new version, and again
 * when the command or the role's env changes, in a one-off container of the new image on one
 * host of a role, with that role's env, secret env file, volumes and options, before any
 * container is swapped. A no-op `up` does not run it; a failure stops the deploy.
 */
export const release = z.strictObject({
  hostName: record(z.string().min(1)),
  /** Which host runs it does not matter to what it does: a new one does not run it again. */
  connection: record(sshConnectionAnywhere),
  service: rerun(name),
  /** The role whose env, env file, volumes and options it runs with. */
  role: rerun(name),
  destination: rerun(name.optional()),
  image: rerun(imageName),
  version: rerun(version),
  /** The image's digest, pulled exactly (see the app container's). */
  digest: field(imageDigest.optional(), { effect: "rerun", unsetKeeps: true }),
  registry: record(registry.optional()),
  /** The command, as one string (split like a shell would, never interpreted) or argv. */
  cmd: rerun(cmd),
  env: rerun(envMap.default({})),
  envFile: rerun(envFileRef.optional()),
  volumes: rerun(z.array(volume).default([])),
  options: rerun(dockerOptions.default({})),
  /** How long it may run, seconds or "10m" (default 600): past it the container is removed
   * and the deploy fails. */
  timeout: record(duration.default(600)),
  /** Seconds to wait for the deploy lock another deploy holds before refusing (default 120). */
  lockWait: record(duration.default(120)),
  /** Kamal's run_directory: where that lock is (default `.kamal`). */
  runDirectory: record(runDirectory),
});
export type ReleaseConfig = z.output<typeof release>;
export type ReleaseInput = z.input<typeof release>;

/**
 * A hook: an executable on the machine running Pulumi (Kamal's `.kamal/hooks/<name>`), run
 * when what it is for changes (a new deploy: its trigger) or the file does, with Kamal's
 * KAMAL_* env; a failure fails the resource, so whatever depends on it does not change.
 */
export const hook = z.strictObject({
  /** Kamal's hook name: pre-connect, pre-deploy, pre-app-boot, post-app-boot, post-deploy… */
  name: rerun(z.string().regex(/^[a-z][a-z0-9-]*$/, { message: "must be a hook name like pre-deploy" })),
  /** Absolute path of the executable. */
  path: record(z.string().startsWith("/", { message: "must be an absolute path" })),
  /** Its arguments (a Service's hook command runs as /bin/sh -c <command>). */
  args: rerun(z.array(z.string()).default([])),
  /** sha256 of the file: an edited hook runs again. */
  contentHash: rerun(z.string().min(1)),
  /** Working directory (the app's root, where Kamal runs from). */
  cwd: record(z.string().startsWith("/", { message: "must be an absolute path" })),
  /** What the run is for (a fingerprint of the deploy): a new one runs the hook again. */
  trigger: field(z.string().min(1), { effect: "rerun", secret: true }),
  /** Env besides the inherited one: Kamal's KAMAL_* variables. KAMAL_RECORDED_AT,
   * KAMAL_PERFORMER (and KAMAL_RUNTIME for post-deploy) are set when it runs. */
  env: record(envMap.default({})),
  /** The app's secrets, by name, as Kamal gives pre-connect, pre-deploy and post-deploy. */
  secretEnv: field(envMap.default({}), { effect: "record", secret: true }),
  /** How long it may run, seconds or "5m" (default 600). */
  timeout: record(duration.default(600)),
  /** Kamal's `--skip-hooks`: this run is recorded as done but the hook is not run. */
  skip: record(z.boolean().default(false)),
});
export type HookConfig = z.output<typeof hook>;
export type HookInput = z.input<typeof hook>;

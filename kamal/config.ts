/**
 * Kamal's config/deploy.yml (1.x, and the basics of 2.x's proxy) read into a normalized,
 * validated description that the KamalApp component turns into Service, Traefik and
 * Accessory resources. It reads the project's files and runs Ruby to render their ERB (and a
 * shell for backtick expressions only when allowed); nothing remote. Secret values are referenced by name,
 * never read here.
 *
 * Keys that change what runs are supported; keys about the kamal CLI (aliases, …) have no
 * meaning here and come back as warnings, by name; any other key is an error with its path.
 *
 * Here: reading the files (ERB, destinations, Kamal 1's .env) and the whole normalization;
 * the keys' schema is ./schema.ts, each section's reading ./sections.ts, the result's
 * shape ./model.ts.
 */
import { execSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { ConfigError, problemsFrom, type ConfigProblem } from "../provider/config/errors";
import { builderKamalVersion, builderOf } from "./builder";
import { renderErb } from "./erb";
import { SecretsFiles } from "./secrets";
import { readSshConfig, sshConfigFiles, sshHostConfig, type SshHostConfig } from "./sshConfig";
import { SecretText, secretEnvName, type KamalConfig, type KeyData } from "./model";

/** A secret's name, as key_data gives one (a key written out is never one). */
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
import { role, NOT_USED, root, type Raw } from "./schema";
import { applyProxyLogging, applyProxyRun } from "./proxyRun";
import { KAMAL_NETWORK, sshConfigOf, registryOf, envOf, isEnvBlock, rolesOf, accessoryOf, deepMerge } from "./sections";

export { deepMerge };

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

/** Kamal 1's default Traefik image (Kamal 1.9.3's). */
export const DEFAULT_TRAEFIK_IMAGE = "traefik:v2.11";
/** The Traefik that stands in for Kamal 2's kamal-proxy unless the program names one: the
 * release the tests run (scripts/toolchain/lib.sh, KP_TRAEFIK_VERSION). */
export const KAMAL2_TRAEFIK_IMAGE = "traefik:v3.6";

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

  // Kamal's own checks: a destination when the file requires one, its version when it names one.
  if (raw.require_destination === true && !ctx.destination) {
    problems.push({ path: "require_destination", message: "You must specify a destination (KamalApp's destination; pulumi-kamal init makes a stack per destination)" });
  }
  if (raw.minimum_version !== undefined && compareVersions(String(raw.minimum_version), KAMAL_VERSION) > 0) {
    problems.push({ path: "minimum_version", message: `Current version is ${KAMAL_VERSION} (the Kamal this project deploys as), minimum required is ${raw.minimum_version}` });
  }
  // A project says which Kamal by its files when deploy.yml does not (no project: Kamal 2).
  const kamal = ctx.kamal ?? kamalVersionOf(raw) ?? (ctx.appRoot ? (projectKamalVersion(ctx.appRoot) ?? undecided(warnings)) : 2);
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
  if (raw.sshkit?.pool_idle_timeout !== undefined) warnings.push("sshkit.pool_idle_timeout: not needed (a connection stays open for the whole update or command, never closed for being idle)");
  if (raw.sshkit?.dns_retries !== undefined) warnings.push("sshkit.dns_retries: not used (a failed lookup is retried as any failed connection is: ssh.dialAttempts, 3 attempts)");
  // Kamal 2.10+: each key_data entry names a secret; a key written out is deprecated there.
  const keyData: KeyData[] = (raw.ssh?.key_data ?? []).map((k) => (SECRET_NAME.test(k) ? { secret: k } : new SecretText(k)));
  if (keyData.some((k) => k instanceof SecretText)) warnings.push("ssh.key_data: a key written out in deploy.yml is deprecated in Kamal (removed in Kamal 3): put it in a secret and name the secret");

  const accessories = Object.entries(raw.accessories ?? {}).map(([name, a]) =>
    accessoryOf(raw.service, name, a, roles, problems, warnings, ctx.appRoot ?? process.cwd(), kamal, raw.deploy_timeout),
  );

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
        ? { image: KAMAL2_TRAEFIK_IMAGE, hostPort: 80, args: {}, labels: {}, options: {}, env: { clear: {}, secret: [] }, networks: [KAMAL_NETWORK] }
        : undefined;

  if (isKamal2 && traefik) {
    // kamal-proxy serves 443 with Let's Encrypt for the roles that ask; Traefik here does so
    // only then (a Traefik change is a restart).
    const routes = [...roles.map((r) => r.route), ...accessories.map((a) => a.proxy?.route)];
    if (routes.some((r) => r?.ssl)) traefik.tls = routes.some((r) => r?.ssl === true) ? { acme: {} } : {};
    if (roles.some((r) => r.traefik && r.route?.forwardHeaders) || accessories.some((a) => a.proxy?.route.forwardHeaders)) traefik.forwardedHeaders = true;
    if (raw.proxy?.run) applyProxyRun(traefik, raw.proxy.run, problems, warnings);
    const roleProxies = Array.isArray(raw.servers) ? [] : Object.values(raw.servers).flatMap((r) => (!Array.isArray(r) && typeof r.proxy === "object" ? [r.proxy] : []));
    applyProxyLogging(traefik, [raw.proxy, ...roleProxies].flatMap((p) => (p?.logging ? [p.logging] : [])));
  }
  // Kamal: "Different roles can't share the same host for SSL".
  const sslHosts = roles.filter((r) => r.route?.ssl).flatMap((r) => r.routeHosts);
  const shared = [...new Set(sslHosts.filter((h, i) => sslHosts.indexOf(h) !== i))];
  if (shared.length) problems.push({ path: "proxy", message: `Different roles can't share the same host for SSL: ${shared.join(", ")}` });
  let maintenancePage: string | undefined;
  let errorPages: Record<string, string> | undefined;
  if (isKamal2 && raw.error_pages_path) {
    const dir = path.resolve(ctx.appRoot ?? process.cwd(), raw.error_pages_path);
    const page = path.join(dir, "503.html");
    if (existsSync(page)) maintenancePage = readFileSync(page, "utf8");
    else warnings.push(`error_pages_path: ${raw.error_pages_path}/503.html does not exist: maintenance uses the default page`);
    errorPages = errorPagesIn(dir);
  }

  const secretNames = new Set<string>(
    [
      ...globalEnv.secret,
      ...roles.flatMap((r) => r.hosts.flatMap((h) => h.env.secret)),
      ...(traefik?.env.secret ?? []),
      ...accessories.flatMap((a) => a.env.secret),
    ].map((entry) => secretEnvName(entry).secret),
  );
  for (const route of [...roles.map((r) => r.route), ...accessories.map((a) => a.proxy?.route)]) if (typeof route?.ssl === "object") secretNames.add(route.ssl.certificatePem).add(route.ssl.privateKeyPem);
  for (const reg of [registry, ...accessories.map((a) => a.registry)]) {
    if (reg) for (const r of [reg.username, reg.password]) if ("secret" in r) secretNames.add(r.secret);
  }
  for (const k of keyData) if (!(k instanceof SecretText)) secretNames.add(k.secret);

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
      keyData,
      keysOnly: raw.ssh?.keys_only,
      forwardAgent: raw.ssh?.forward_agent,
      maxConcurrentStarts: raw.sshkit?.max_concurrent_starts,
    },
    roles,
    primaryRole,
    builder,
    kamal,
    secretsPath: raw.secrets_path,
    ...(raw.run_directory !== undefined ? { runDirectory: raw.run_directory } : {}),
    env: globalEnv,
    volumes: raw.volumes ?? [],
    labels: raw.labels ?? {},
    traefik,
    maintenancePage,
    ...(errorPages ? { errorPages } : {}),
    hooksPath: raw.hooks_path ?? ".kamal/hooks",
    accessories,
    boot: { limit: raw.boot?.limit, wait: raw.boot?.wait, parallelRoles: raw.boot?.parallel_roles ?? false },
    stopWaitTime: isKamal2 ? raw.stop_timeout ?? raw.drain_timeout : raw.stop_wait_time ?? raw.drain_timeout,
    // Kamal 1.9 waits readiness_delay too (7 s by default), for a role without a health check.
    readinessDelay: raw.readiness_delay ?? 7,
    retainContainers: raw.retain_containers,
    logging: raw.logging,
    aliases: raw.aliases ?? {},
    secretNames: [...secretNames].sort(),
    warnings,
  };
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
 * or an accessory; secrets_path, stop_timeout, error_pages_path,
 * hooks_output, boot.parallel_roles, a secret alias, a role's stop_timeout, Kamal 2's builder
 * keys) makes it Kamal 2; else any Kamal 1 key (traefik at the top or on a role, healthcheck,
 * primary_web_role, stop_wait_time, builder.multiarch or a local/remote builder object) makes
 * it Kamal 1; a file with neither says nothing (undefined: the project decides, see
 * projectKamalVersion).
 */
export function kamalVersionOf(raw: Raw): 1 | 2 | undefined {
  const roles = Array.isArray(raw.servers) ? [] : Object.values(raw.servers).filter((r): r is z.output<typeof role> => !Array.isArray(r));
  const envs = [raw.env, ...roles.map((r) => r.env), ...Object.values(raw.accessories ?? {}).map((a) => a.env)];
  const k2 =
    raw.proxy !== undefined ||
    roles.some((r) => r.proxy !== undefined || r.stop_timeout !== undefined) ||
    Object.values(raw.accessories ?? {}).some((a) => a.proxy !== undefined) ||
    // (readiness_delay is Kamal 1.9's too.)
    ["secrets_path", "stop_timeout", "error_pages_path", "hooks_output"].some((k) => (raw as Record<string, unknown>)[k] !== undefined) ||
    raw.boot?.parallel_roles !== undefined ||
    builderKamalVersion(raw.builder) === 2 ||
    envs.some((e) => isEnvBlock(e) && (e.secret ?? []).some((x) => x.includes(":")));
  if (k2) return 2;
  const k1 = KAMAL1_ONLY.some((k) => raw[k] !== undefined) || roles.some((r) => r.traefik !== undefined) || builderKamalVersion(raw.builder) === 1;
  return k1 ? 1 : undefined;
}

/**
 * The Kamal a project deploys with, when deploy.yml itself does not say: the `kamal` gem its
 * Gemfile.lock locks, else its secrets files (Kamal 2's `.kamal/secrets*`, Kamal 1's `.env`).
 */
export function projectKamalVersion(appRoot: string): 1 | 2 | undefined {
  const lock = path.join(appRoot, "Gemfile.lock");
  const locked = existsSync(lock) ? /^ {4}kamal \((\d+)\./m.exec(readFileSync(lock, "utf8")) : null;
  if (locked && (locked[1] === "1" || locked[1] === "2")) return Number(locked[1]) as 1 | 2;
  const dir = path.join(appRoot, ".kamal");
  if (existsSync(dir) && readdirSync(dir).some((f) => f.startsWith("secrets"))) return 2;
  if (existsSync(path.join(appRoot, ".env"))) return 1;
  return undefined;
}

/** Nothing says which Kamal: read as Kamal 2 (the current one), and say so. */
function undecided(warnings: string[]): 2 {
  warnings.push("deploy.yml uses no key only one Kamal version has, and neither a Gemfile.lock with kamal nor a secrets file says which: read as Kamal 2 (app port 80, /up on it, the kamal network); for Kamal 1, set KamalApp's kamalVersion: 1");
  return 2;
}


/** The Kamal release whose behaviour this project matches (its config keys, commands and
 * defaults): what `minimum_version` is compared with. */
export const KAMAL_VERSION = "2.12.0";

/** Compares dotted versions as RubyGems does for plain releases (a missing part is 0). */
function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((x) => parseInt(x, 10) || 0);
  const pb = b.split(".").map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** Kamal's error pages (`{4??.html,5??.html}` in error_pages_path) by status code, but 503:
 * the maintenance page, and Traefik's own 503 (no server) is not one the pages replace. */
function errorPagesIn(dir: string): Record<string, string> | undefined {
  if (!existsSync(dir)) return undefined;
  const pages = Object.fromEntries(
    readdirSync(dir)
      .flatMap((f) => (/^[45][0-9][0-9]\.html$/.test(f) && f !== "503.html" ? [[f.slice(0, 3), readFileSync(path.join(dir, f), "utf8")]] : []))
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  return Object.keys(pages).length ? pages : undefined;
}

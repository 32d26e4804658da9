import { proxyErrorPages } from "../provider/commands/proxy";
import { name as nameSchema } from "../provider/config/values";
import * as pulumi from "@pulumi/pulumi";
import { hostRule } from "../provider/commands/app";
import { fullRule } from "../provider/commands/proxy";
import type { HealthcheckInput, MaintenanceInput } from "../provider/config/values";
import { createHash } from "node:crypto";
import { AppContainer, EnvFileResource, Hook, ReleaseCommand, type AppContainerInputs, type ReleaseInputs, type ResourceInputs } from "../provider/resources";
import {
  configError,
  connectionFor,
  dropUndefined,
  dropUnset,
  envFileRef,
  secretEnvFile,
  hostKeyName,
  registryInput,
  resolveHost,
  runDirectoryOf,
  type ResolvedHost,
} from "./common";
import { Image } from "./image";
import { MAINTENANCE_CONFIG, parseOperatorMaintenance } from "./maintenanceConfig";

export { MAINTENANCE_CONFIG, parseOperatorMaintenance };
import { defaultPrimary } from "./primaryRole";
import { ROLE_SETTINGS, type DeployedContainer, type MaintenanceArgs, type ProxyRouteArgs, type RoleArgs, type ServiceArgs } from "./serviceArgs";

/**
 * A Kamal service: each role on each of its hosts is one resource whose update is the
 * health-gated swap. The primary role goes first, its hosts in batches of `bootLimit` (all at
 * once by default); the other roles start once it is done, so a version that fails its
 * health check never reaches them.
 */
export class Service extends pulumi.ComponentResource {
  /** Per role, per host: the running version, container name and id, image digest. */
  public readonly containers: pulumi.Output<Record<string, Record<string, DeployedContainer>>>;
  /** The resources, by role then host name. */
  public readonly resources: Record<string, Record<string, AppContainer>>;
  /** Env files, by role then host name (only for roles with secret env). */
  public readonly envFiles: Record<string, Record<string, EnvFileResource>>;
  /** The release command's resource, when the service has one. */
  public readonly release?: ReleaseCommand;

  constructor(name: string, args: ServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:Service", name, {}, opts);
    const service = args.service ?? name;
    validateShape(name, args);
    const built = args.image instanceof Image ? args.image : undefined;
    const image: pulumi.Input<string> = built ? built.repository : (args.image as pulumi.Input<string>);
    const version: pulumi.Input<string> = built ? built.version : args.version!;
    const digest = built?.digest;
    // `pulumi-kamal maintenance` / `live`: the operator's switch in the stack's config wins.
    const operated = operatorMaintenance(service);
    const roleNames = Object.keys(args.roles);
    // Only the pages that replace Traefik's own errors reach the containers' state (a Rails
    // app's public/404.html and 500.html are the app's to serve).
    const servedPages = args.errorPages === undefined ? undefined : pulumi.output(args.errorPages).apply((p) => (Object.keys(proxyErrorPages(p)).length ? proxyErrorPages(p) : undefined));
    const primary = args.primaryRole ?? defaultPrimary(roleNames);
    this.resources = {};
    this.envFiles = {};

    const ordered = [primary, ...roleNames.filter((r) => r !== primary)];
    const secretEnvOf = (role: string, host: ResolvedHost) => ({ ...(args.env?.secret ?? {}), ...(args.roles[role].env?.secret ?? {}), ...(host.env?.secret ?? {}) });
    const clearEnvOf = (role: string, host: ResolvedHost) => ({ ...(args.env?.clear ?? {}), ...(args.roles[role].env?.clear ?? {}), ...(host.env?.clear ?? {}) });
    for (const role of ordered) {
      this.envFiles[role] = {};
      for (const host of args.roles[role].hosts.map(resolveHost)) {
        const envFile = secretEnvFile(this, `${name}-env-${role}-${hostKeyName(host)}`, args.ssh, host,
          `${runDirectoryOf(args)}/env/roles/${[service, role, args.destination].filter(Boolean).join("-")}.env`, secretEnvOf(role, host));
        if (envFile) this.envFiles[role][host.name] = envFile;
      }
    }

    // Hooks: what a deploy is, for them: everything the containers run (not how to reach the
    // hosts, not maintenance, which only reroutes).
    const hook = (which: "pre-deploy" | "post-deploy", command: pulumi.Input<string> | undefined, dependsOn: pulumi.Resource[]) => {
      if (command === undefined) return undefined;
      const { ssh: _ssh, hooks: _hooks, maintenance: _m, image: _i, ...rest } = args;
      const deployed = { ...rest, image, version, digest };
      const hookVersion = pulumi.output(version);
      const hosts = [...new Set(Object.values(args.roles).flatMap((r) => r.hosts.map((h) => resolveHost(h).address)))];
      return new Hook(`${name}-hook-${which}`, {
        name: which,
        path: "/bin/sh",
        args: pulumi.output(command).apply((c) => ["-c", c]),
        contentHash: pulumi.output(command).apply((c) => createHash("sha256").update(c).digest("hex")),
        cwd: process.cwd(),
        trigger: pulumi.secret(pulumi.output(deployed as Record<string, unknown>).apply((d) => createHash("sha256").update(JSON.stringify(d)).digest("hex"))),
        env: {
          KAMAL_SERVICE: service,
          KAMAL_VERSION: hookVersion,
          KAMAL_SERVICE_VERSION: hookVersion.apply((v) => `${service}@${v.includes("_") ? v : v.slice(0, 7)}`),
          ...(args.destination ? { KAMAL_DESTINATION: args.destination } : {}),
          KAMAL_HOSTS: hosts.join(","),
          KAMAL_COMMAND: "deploy",
          KAMAL_LOCK: "false",
        },
      }, { parent: this, dependsOn });
    };
    const before = hook("pre-deploy", args.hooks?.beforeDeploy, []);

    // What a container of a role on a host is, whatever runs in it (the app, the release).
    const onHost = (role: string, host: ResolvedHost) => ({
      hostName: host.name,
      connection: connectionFor(args.ssh, host),
      service,
      role,
      destination: args.destination,
      image,
      version,
      digest,
      registry: registryInput(args.registry),
      env: clearEnvOf(role, host),
      envFile: envFileRef(this.envFiles[role][host.name]),
      volumes: roleSetting("volumes", args, args.roles[role]),
      options: args.roles[role].options ?? {},
    });

    // The release command runs before any container of any role is swapped.
    if (args.release) {
      const role = args.release.role ?? primary;
      const host = resolveHost(args.roles[role].hosts[0]);
      const envFile = this.envFiles[role][host.name];
      this.release = new ReleaseCommand(
        `${name}-release`,
        dropUnset({
          ...onHost(role, host),
          cmd: args.release.cmd,
          timeout: args.release.timeout,
          lockWait: args.lockWait,
          runDirectory: args.runDirectory,
        }) as ResourceInputs<ReleaseInputs>,
        { parent: this, dependsOn: [...(envFile ? [envFile] : []), ...(before ? [before] : [])] },
      );
    }

    const primaries: AppContainer[] = [];
    const all: AppContainer[] = [];
    // onFailure "revert": every host is one member of a rollout, its phase its turn: the
    // primary role's batches (canaries first), then the other roles' batches.
    const revert = args.onFailure === "revert";
    const members: { role: string; host: string; phase: number }[] = [];
    {
      let next = 0;
      for (const role of ordered) {
        const n = args.roles[role].hosts.length;
        const of = batchesOf(args.bootLimit, n, role === primary ? (args.canary?.hosts ?? 0) : 0);
        args.roles[role].hosts.forEach((h, i) => members.push({ role, host: resolveHost(h).name, phase: next + of(i) }));
        next += of(n - 1) + 1;
      }
    }
    const rollout = revert ? { group: [service, args.destination].filter(Boolean).join("-"), members } : undefined;
    // Kamal's boot.parallel_roles false: on a host, the other roles boot one after another.
    const lastOnHost = new Map<string, AppContainer>();
    for (const role of ordered) {
      const r = args.roles[role];
      const hosts = r.hosts.map(resolveHost);
      const traefik = r.traefik ?? role === "web";
      this.resources[role] = {};
      const canary = role === primary ? args.canary : undefined;
      const batchOf = batchesOf(args.bootLimit, hosts.length, canary?.hosts ?? 0);
      let previousBatch: AppContainer[] = [];
      let batch: AppContainer[] = [];
      hosts.forEach((host, i) => {
        if (i > 0 && batchOf(i) !== batchOf(i - 1)) {
          previousBatch = batch;
          batch = [];
        }
        const isCanary = !!canary && batchOf(i) === 0;
        const envFile = this.envFiles[role][host.name];
        // Batches and roles follow one another as dependent resources, or, in a rollout, by
        // taking their turns (the resources are updated at once).
        const sameHost = !revert && role !== primary && args.parallelRoles === false ? lastOnHost.get(host.name) : undefined;
        const dependsOn = [...(revert ? [] : [...(role === primary ? [] : primaries), ...previousBatch]), ...(sameHost ? [sameHost] : []), ...(this.release ? [this.release] : []), ...(before ? [before] : [])];
        const res = new AppContainer(
          `${name}-${role}-${hostKeyName(host)}`,
          dropUnset({
            ...onHost(role, host),
            ...roleSettings(args, r),
            traefik,
            routeHosts: traefik ? routeHostsOf(hostsFrom(args.proxy, r.proxy)) : undefined,
            proxy: traefik ? mergedRouteSettings(args.proxy, r.proxy) : undefined,
            maintenance: traefik ? maintenanceOf(operated ?? args.maintenance, args.maintenancePage) : undefined,
            errorPages: traefik ? servedPages : undefined,
            assetPath: traefik ? roleSetting("assetPath", args, r) : undefined,
            healthcheck: healthcheckFor(args, r, traefik),
            retain: args.retainContainers,
            bootDelay: batchOf(i) > 0 && args.bootWait ? args.bootWait : undefined,
            watch: isCanary ? (canary.watch ?? args.watch ?? 60) : roleSetting("watch", args, r),
            rollout,
            // Recorded only where the default rule would not find it (no change for the rest).
            primary: role === primary && primary !== defaultPrimary(roleNames) ? true : undefined,
            readinessDelay: args.readinessDelay,
            lockWait: args.lockWait,
            runDirectory: args.runDirectory,
          }) as ResourceInputs<AppContainerInputs>,
          { parent: this, dependsOn: [...dependsOn, ...(envFile ? [envFile] : [])] },
        );
        this.resources[role][host.name] = res;
        all.push(res);
        batch.push(res);
        if (role === primary) primaries.push(res);
        else lastOnHost.set(host.name, res);
      });
    }

    hook("post-deploy", args.hooks?.afterDeploy, all);

    const containers: pulumi.Output<Record<string, Record<string, DeployedContainer>>> = pulumi.output(
      Object.fromEntries(
        Object.entries(this.resources).map(([role, byHost]) => [
          role,
          Object.fromEntries(
            Object.entries(byHost).map(([host, res]) => [
              host,
              { version: res.runningVersion, containerName: res.containerName, containerId: res.containerId, imageDigest: res.imageDigest },
            ]),
          ),
        ]),
      ),
    );
    this.containers = containers;
    this.registerOutputs({ containers: this.containers });
  }
}

/** A role's container setting, combined with the service's as ROLE_SETTINGS says. */
function roleSetting<K extends keyof typeof ROLE_SETTINGS>(key: K, service: ServiceArgs, role: RoleArgs): RoleArgs[K] {
  const how: string = ROLE_SETTINGS[key];
  const own: unknown = role[key];
  const given: unknown = how === "own" ? undefined : (service as Partial<Record<K, unknown>>)[key];
  if (own === undefined || given === undefined || how === "over") return (own ?? given) as RoleArgs[K];
  // Maps and lists combine, plain or as Outputs.
  const combine = (s: unknown, r: unknown): unknown => (how === "append" ? [...(s as unknown[]), ...(r as unknown[])] : { ...(s as object), ...(r as object) });
  const plain = (v: unknown) => !pulumi.Output.isInstance(v) && !(v instanceof Promise);
  return (plain(given) && plain(own) ? combine(given, own) : pulumi.all([given, own] as pulumi.Input<unknown>[]).apply(([s, r]) => combine(s, r))) as RoleArgs[K];
}

/** Every container setting of a role (ROLE_SETTINGS), combined with the service's. */
function roleSettings(service: ServiceArgs, role: RoleArgs): Partial<Pick<RoleArgs, keyof typeof ROLE_SETTINGS>> {
  return Object.fromEntries((Object.keys(ROLE_SETTINGS) as (keyof typeof ROLE_SETTINGS)[]).map((k) => [k, roleSetting(k, service, role)]));
}

function batchSizeOf(limit: ServiceArgs["bootLimit"], hosts: number): number {
  if (limit === undefined) return Math.max(1, hosts);
  if (typeof limit === "string") return Math.max(1, Math.ceil((hosts * parseFloat(limit)) / 100));
  return Math.max(1, limit);
}

/** The boot batch of each host (by index): the canaries first when there are any, then the
 * rest in batches of `bootLimit`. */
export function batchesOf(limit: ServiceArgs["bootLimit"], hosts: number, canaries: number): (i: number) => number {
  const size = batchSizeOf(limit, hosts);
  return (i) => (canaries > 0 ? (i < canaries ? 0 : 1 + Math.floor((i - canaries) / size)) : Math.floor(i / size));
}

/** The role's own host names when it names any, else the service's (Kamal merges a role's
 * proxy settings over the top-level ones). */
function hostsFrom(service: ProxyRouteArgs | undefined, role: ProxyRouteArgs | undefined): ProxyRouteArgs | undefined {
  return role?.host || role?.hosts?.length ? role : service;
}

function routeHostsOf(p: ProxyRouteArgs | undefined): string[] {
  return [...(p?.host ? [p.host] : []), ...(p?.hosts ?? [])];
}

/** The route settings of a role: its own over the service's. A certificate's key is a
 * Pulumi secret even when given as a plain string (the schema says so). */
function mergedRouteSettings(service: ProxyRouteArgs | undefined, role: ProxyRouteArgs | undefined) {
  const { host: _h, hosts: _hs, pathPrefix, ...merged } = { ...(service ?? {}), ...(role ?? {}) };
  const prefixes = pathPrefix !== undefined ? pathPrefix.split(",").map((p) => p.trim()).filter(Boolean) : merged.pathPrefixes;
  const ssl = merged.ssl;
  return dropUnset({
    ...merged,
    pathPrefixes: prefixes,
    ssl: ssl === undefined || typeof ssl === "boolean" ? ssl : pulumi.secret(pulumi.output(ssl as pulumi.Input<unknown>)),
  });
}

function operatorMaintenance(service: string): MaintenanceArgs | undefined {
  const [ns, key] = MAINTENANCE_CONFIG.split(":");
  const m = parseOperatorMaintenance(new pulumi.Config(ns).get(key))[service];
  return m ? { ...(m.message ? { message: m.message } : {}) } : undefined;
}

function maintenanceOf(m: pulumi.Input<MaintenanceArgs> | undefined, page: pulumi.Input<string> | undefined): pulumi.Input<MaintenanceInput | undefined> | undefined {
  if (m === undefined || m === false) return undefined;
  return pulumi.all([m, page]).apply(([v, p]) => (v === false ? undefined : dropUndefined({ ...(p ? { page: p } : {}), ...(v === true ? {} : (v as MaintenanceInput)) })));
}

function healthcheckFor(args: ServiceArgs, role: RoleArgs, traefik: boolean): pulumi.Input<HealthcheckInput> | undefined {
  if (role.healthcheck === false) return undefined;
  // Kamal checks health for roles behind Traefik; other roles only when asked to.
  if (!traefik && role.healthcheck === undefined) return undefined;
  const merged = { ...(args.healthcheck ?? {}), ...(role.healthcheck ?? {}) };
  return pulumi.output({ ...merged, port: merged.port ?? role.appPort ?? args.appPort }).apply(dropUndefined);
}

/** Structural rules that must hold before any resource exists (values may still be unknown). */
export function validateShape(name: string, args: ServiceArgs): void {
  const roles = Object.keys(args.roles ?? {});
  if (roles.length === 0) throw configError("Service", name, "roles", "must define at least one role");
  if (args.image instanceof Image) {
    if (args.version !== undefined) throw configError("Service", name, "version", "comes from the image when it is an Image (the version it built): leave it out");
  } else if (args.version === undefined) {
    throw configError("Service", name, "version", "is required (or give an Image as the image)");
  }
  for (const role of roles) {
    if (!nameSchema.safeParse(role).success) {
      throw configError("Service", name, `roles.${role}`, "role names may contain only letters, digits, '_', '.', '-'");
    }
    const r = args.roles[role];
    if (!r.hosts || r.hosts.length === 0) throw configError("Service", name, `roles.${role}.hosts`, "must list at least one host");
    const seen = new Set<string>();
    r.hosts.forEach((h, i) => {
      const host = resolveHost(h);
      if (!host.name) throw configError("Service", name, `roles.${role}.hosts.${i}.name`, "is required");
      if (seen.has(host.name)) throw configError("Service", name, `roles.${role}.hosts.${i}`, `lists host "${host.name}" twice`);
      seen.add(host.name);
    });
    if (r.traefik === true && r.healthcheck === false) {
      throw configError("Service", name, `roles.${role}.healthcheck`, "cannot be off for a role behind Traefik");
    }
    // Each host's Traefik asks the CA for its own certificate, and the CA checks the name at
    // one address: Let's Encrypt serves one host (as in Kamal); more take a certificate.
    const ssl = (r.proxy ?? {}).ssl ?? args.proxy?.ssl;
    if (ssl === true && (r.traefik ?? role === "web") && r.hosts.length > 1) {
      throw configError("Service", name, `roles.${role}.proxy.ssl`, `a certificate from the ACME CA serves one host, and the role has ${r.hosts.length}: give the role its own certificate (ssl: { certificatePem, privateKeyPem }) to serve it from several`);
    }
  }
  // Two roles behind Traefik on one host with the same route would share its traffic.
  const claims = new Map<string, string>();
  for (const role of roles) {
    const r = args.roles[role];
    if (!(r.traefik ?? role === "web")) continue;
    // Path prefixes (when given as plain values) make routes on one host name distinct.
    const merged = { ...(args.proxy ?? {}), ...(r.proxy ?? {}) };
    const prefixes = typeof merged.pathPrefix === "string" ? merged.pathPrefix.split(",").map((x) => x.trim()) : Array.isArray(merged.pathPrefixes) ? (merged.pathPrefixes as string[]) : [];
    const route = fullRule(hostRule(routeHostsOf(hostsFrom(args.proxy, r.proxy))), prefixes);
    for (const h of r.hosts) {
      const key = `${resolveHost(h).name} ${route}`;
      const other = claims.get(key);
      if (other) {
        throw configError("Service", name, `roles.${role}.proxy`, `claims the route ${route} on host "${resolveHost(h).name}" as role "${other}" does: give one its own proxy host`);
      }
      claims.set(key, role);
    }
  }
  if (args.primaryRole !== undefined && !roles.includes(args.primaryRole)) {
    throw configError("Service", name, "primaryRole", `names no role (roles: ${roles.join(", ")})`);
  }
  if (args.onFailure !== undefined && args.onFailure !== "stop" && args.onFailure !== "revert") {
    throw configError("Service", name, "onFailure", 'must be "stop" or "revert"');
  }
  if (args.release?.role !== undefined && !roles.includes(args.release.role)) {
    throw configError("Service", name, "release.role", `names no role (roles: ${roles.join(", ")})`);
  }
  if (args.canary !== undefined) {
    const n = args.canary.hosts;
    const primary = args.primaryRole ?? defaultPrimary(roles);
    const count = args.roles[primary]?.hosts.length ?? 0;
    if (!Number.isInteger(n) || n < 1) throw configError("Service", name, "canary.hosts", "must be a positive integer");
    if (n >= count) throw configError("Service", name, "canary.hosts", `must be fewer than the primary role's hosts (role "${primary}" has ${count}): the canaries go first, the rest after them`);
  }
  const limit = args.bootLimit;
  if (limit !== undefined && !(typeof limit === "string" ? /^\d+(\.\d+)?%$/.test(limit) && parseFloat(limit) > 0 : Number.isInteger(limit) && limit >= 1)) {
    throw configError("Service", name, "bootLimit", 'must be a positive integer or a percentage like "25%"');
  }
}

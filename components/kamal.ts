import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parseDotenv } from "../provider/config/dotenv";
import { loadKamalConfig, type KamalConfig, type KamalEnv, type ValueRef } from "../provider/config/kamal";
import { Accessory } from "./accessory";
import { dropUndefined, type EnvArgs, type HostArg, type SshArgs } from "./common";
import { Service, type RoleArgs } from "./service";
import { Traefik } from "./traefik";

export interface KamalAppArgs {
  /** Path of the app's config/deploy.yml. */
  readonly configFile: string;
  /** Kamal destination: deploy.<destination>.yml is merged over deploy.yml. */
  readonly destination?: string;
  /** The version (image tag) to deploy; Kamal uses the git commit. */
  readonly version: pulumi.Input<string>;
  /** SSH settings over the file's `ssh` (user, port and proxy come from the file). Host
   * keys must be given here (knownHosts, knownHostsPath, or per-host keys). */
  readonly ssh?: SshArgs;
  /** Host keys by host address, "ssh-ed25519 AAAA…". */
  readonly hostKeys?: Record<string, pulumi.Input<string>>;
  /** Secret values by name. Otherwise each name is looked up in Pulumi config (as a secret),
   * then in the secrets files. */
  readonly secrets?: Record<string, pulumi.Input<string>>;
  /** Dotenv files with secrets. Default: Kamal 1's `.env[.destination]` and Kamal 2's
   * `.kamal/secrets-common`, `.kamal/secrets[.destination]` in the app root, when present. */
  readonly secretsFiles?: string[];
  /** Traefik image, overriding deploy.yml's traefik.image. */
  readonly traefikImage?: pulumi.Input<string>;
  /** Run `` `command` `` ERB expressions in deploy.yml locally, as Kamal does (default false). */
  readonly allowShellInErb?: boolean;
}

/**
 * A Kamal app from its config/deploy.yml: Traefik on the hosts of roles behind it, the
 * Service with every role, and the accessories. The same deployment `kamal deploy` makes,
 * with preview, state and history.
 */
export class KamalApp extends pulumi.ComponentResource {
  public readonly config: KamalConfig;
  public readonly service: Service;
  public readonly traefik?: Traefik;
  public readonly accessories: Record<string, Accessory> = {};

  constructor(name: string, args: KamalAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:KamalApp", name, {}, opts);
    const cfg = loadKamalConfig({ file: args.configFile, destination: args.destination, allowShellInErb: args.allowShellInErb });
    this.config = cfg;
    for (const w of cfg.warnings) pulumi.log.warn(`${path.basename(args.configFile)}: ${w}`, this);

    const secret = secretResolver(args, cfg);
    const ssh = sshOf(cfg, args, secret);
    const registry = cfg.registry
      ? pulumi.secret(
          pulumi.all([valueOf(cfg.registry.username, secret), valueOf(cfg.registry.password, secret)]).apply(([username, password]) => ({
            server: cfg.registry!.server,
            username,
            password,
          })),
        )
      : undefined;
    const fromRegistry = (image: string) => (cfg.registry && image.startsWith(`${cfg.registry.server}/`) ? registry : undefined);
    const host = (address: string, env?: KamalEnv): HostArg => ({
      name: address,
      address,
      hostKey: args.hostKeys?.[address],
      env: env ? envArgs(env, secret) : undefined,
    });

    const dependsOn: pulumi.Resource[] = [];
    if (cfg.traefik) {
      const hosts = [...new Set(cfg.roles.filter((r) => r.traefik).flatMap((r) => r.hosts.map((h) => h.address)))];
      const image = args.traefikImage ?? cfg.traefik.image;
      this.traefik = new Traefik(`${name}-traefik`, {
        hosts: hosts.map((a) => host(a)),
        ssh,
        image,
        registry: typeof image === "string" ? fromRegistry(image) : registry,
        hostPort: cfg.traefik.hostPort,
        args: cfg.traefik.args,
        labels: cfg.traefik.labels,
        options: cfg.traefik.options,
        env: envArgs(cfg.traefik.env, secret),
        lockService: cfg.service,
        destination: cfg.destination,
      }, { parent: this });
      dependsOn.push(this.traefik);
    }

    for (const a of cfg.accessories) {
      this.accessories[a.name] = new Accessory(`${name}-${a.name}`, {
        service: cfg.service,
        destination: cfg.destination,
        name: a.name,
        containerName: a.containerName,
        image: a.image,
        hosts: a.hosts.map((h) => host(h)),
        ssh,
        registry: fromRegistry(a.image),
        port: a.port,
        cmd: a.cmd,
        env: envArgs(a.env, secret),
        files: a.files.map((f) => ({ target: f.target, content: f.content })),
        directories: a.directories,
        volumes: a.volumes,
        options: a.options,
        labels: a.labels,
      }, { parent: this });
      dependsOn.push(this.accessories[a.name]);
    }

    const roles: Record<string, RoleArgs> = {};
    for (const r of cfg.roles) {
      roles[r.name] = {
        // Role and tag env are already merged per host by the loader.
        hosts: r.hosts.map((h) => host(h.address, h.env)),
        cmd: r.cmd,
        labels: r.labels,
        options: r.options,
        traefik: r.traefik,
        appPort: r.appPort,
        healthcheck: r.healthcheck ?? false,
        logging: r.logging,
      };
    }
    this.service = new Service(name, {
      service: cfg.service,
      image: cfg.image,
      version: args.version,
      destination: cfg.destination,
      registry,
      ssh,
      roles,
      volumes: cfg.volumes,
      stopWaitTime: cfg.stopWaitTime,
      retainContainers: cfg.retainContainers,
      primaryRole: cfg.primaryRole,
      bootLimit: cfg.boot.limit as number | `${number}%` | undefined,
      bootWait: cfg.boot.wait,
    }, { parent: this, dependsOn });
    this.registerOutputs({ containers: this.service.containers });
  }
}

type Resolve = (name: string, at: string) => pulumi.Output<string>;

/** Finds each named secret: explicit values, Pulumi config secrets, then secrets files.
 * A missing one fails before anything is deployed, naming it (never a value). */
function secretResolver(args: KamalAppArgs, cfg: KamalConfig): Resolve {
  const appRoot = path.dirname(path.dirname(path.resolve(args.configFile)));
  const dest = cfg.destination;
  const files =
    args.secretsFiles ??
    [".env", ...(dest ? [`.env.${dest}`] : []), ".kamal/secrets-common", ".kamal/secrets", ...(dest ? [`.kamal/secrets.${dest}`] : [])];
  const fromFiles: Record<string, string> = {};
  for (const f of files) {
    const file = path.resolve(appRoot, f);
    if (existsSync(file)) Object.assign(fromFiles, parseDotenv(readFileSync(file, "utf8"), f));
    else if (args.secretsFiles) throw new Error(`KamalApp: secrets file ${f} does not exist`);
  }
  const config = new pulumi.Config();
  return (key, at) => {
    const explicit = args.secrets?.[key];
    if (explicit !== undefined) return pulumi.secret(explicit);
    const fromConfig = config.getSecret(key);
    if (fromConfig !== undefined) return fromConfig;
    if (fromFiles[key] !== undefined) return pulumi.secret(fromFiles[key]);
    const where = files.length ? `or put it in ${files.join(" or ")}` : "or name a secrets file in secretsFiles";
    throw new Error(`KamalApp: ${at}: secret ${key} has no value: set it with \`pulumi config set --secret ${key} …\`, pass it in secrets, ${where}`);
  };
}

function valueOf(ref: ValueRef, secret: Resolve): pulumi.Input<string> {
  return "value" in ref ? ref.value : secret(ref.secret, "registry");
}

function envArgs(env: KamalEnv, secret: Resolve): EnvArgs {
  return {
    clear: env.clear,
    secret: Object.fromEntries(env.secret.map((k) => [k, secret(k, "env.secret")])),
  };
}

function expandHome(p: string): string {
  return p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

function sshOf(cfg: KamalConfig, args: KamalAppArgs, secret: Resolve): SshArgs {
  const keyData = cfg.ssh.keyDataSecrets[0];
  return {
    user: cfg.ssh.user,
    port: cfg.ssh.port,
    privateKeyPath: cfg.ssh.keyPaths[0] ? expandHome(cfg.ssh.keyPaths[0]) : undefined,
    privateKey: keyData ? secret(keyData, "ssh.key_data") : undefined,
    proxy: cfg.ssh.proxy ? { ...cfg.ssh.proxy, user: cfg.ssh.proxy.user ?? cfg.ssh.user } : undefined,
    ...dropUndefined(args.ssh ?? {}),
  };
}

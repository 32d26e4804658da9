import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { loadKamalConfig } from "../kamal/config";
import { kamalConfigView, secretEnvName, SecretText, type KamalAccessory, type KamalConfig, type KamalEnv, type KeyData, type ValueRef } from "../kamal/model";
import type { AcmeInput } from "../provider/config/schemas";
import { Hook, type ResourceInputs } from "../provider/resources";
import { renderErb } from "../kamal/erb";
import { SecretsFiles } from "../kamal/secrets";
import { Accessory } from "./accessory";
import { accessoriesApplied, type AccessoriesApplied } from "./accessoriesApplied";
import { hooksSkipped } from "./skipHooks";
import { Image } from "./image";
import { kamalVersion } from "./buildContext";
import { dropUndefined, type PlainSshArgs, type RegistryArgs, type SshArgs } from "./common";
import { accessoryArgs, envArgs, imageArgs, serviceArgs, traefikArgs, type KamalContext } from "./kamalArgs";
import { Service } from "./service";
import type { ServiceArgs } from "./serviceArgs";
import { Traefik } from "./traefik";

export interface KamalAppArgs {
  /** Path of the app's config/deploy.yml. */
  readonly configFile: string;
  /** Kamal destination: deploy.<destination>.yml is merged over deploy.yml. */
  readonly destination?: string;
  /** The version (image tag) to deploy; Kamal uses the git commit (with `build`, that is the
   * default: the commit, or Kamal's `_uncommitted_` version for a builder context). */
  readonly version?: pulumi.Input<string>;
  /** Build the image from the app's sources (deploy.yml's `builder`) and push it in the same
   * update, as `kamal deploy` does: hosts then run exactly the pushed digest, and an
   * unchanged commit builds nothing. false (default): deploy `image:version` as the registry
   * has it, as `kamal deploy --skip-push`. "keep": the same, for a stack that has built
   * before: its image stays recorded as it is (declared, never built or changed), so that an
   * update of some resources only (a rollback) finds every resource where it was. */
  readonly build?: boolean | "keep";
  /** SSH settings over the file's `ssh` (user, port and proxy come from the file). Host
   * keys must be given here (knownHosts, knownHostsPath, or per-host keys). */
  readonly ssh?: SshArgs;
  /** Host keys by host address, "ssh-ed25519 AAAA…". */
  readonly hostKeys?: Record<string, pulumi.Input<string>>;
  /** Secret values by name. Otherwise each name is looked up in Pulumi config (as a secret),
   * then in the secrets files. */
  readonly secrets?: Record<string, pulumi.Input<string>>;
  /** Dotenv files with secrets, relative to the app root. Default, as Kamal reads them:
   * Kamal 2's `<secrets_path>-common` and `<secrets_path>` (`<secrets_path>.<destination>`
   * with a destination; secrets_path defaults to `.kamal/secrets`), Kamal 1's `.env`
   * (`.env.<destination>` over it). A secret's `$(…)` runs only when that secret is used and
   * has no value from `secrets` or Pulumi config. */
  readonly secretsFiles?: string[];
  /** The Kamal major version deploy.yml is written for, when detection should not decide
   * (detection: any Kamal 2 key makes it 2; else any Kamal 1 key makes it 1; else the kamal
   * gem Gemfile.lock locks; else `.kamal/secrets*` makes it 2 and `.env` 1; else 2, warned). */
  readonly kamalVersion?: 1 | 2;
  /** Traefik image, overriding deploy.yml's traefik.image. */
  readonly traefikImage?: pulumi.Input<string>;
  /** deploy.yml's ERB: "ruby" renders it with Ruby's ERB exactly as Kamal does (conditionals,
   * backticks, any Ruby), "builtin" with a documented subset; default: Ruby when installed. */
  readonly erb?: "ruby" | "builtin";
  /** Built-in renderer only: run `` `command` `` ERB expressions locally, as Kamal does
   * (default false). */
  readonly allowShellInErb?: boolean;
  /** The ACME CA for roles with `proxy.ssl: true` (default Let's Encrypt's production
   * directory, as kamal-proxy): email, another directory (caServer), its CA certificates,
   * the challenge. */
  readonly acme?: pulumi.Input<ResourceInputs<AcmeInput>>;
  /** Maintenance mode (`kamal app maintenance [--message]`): true, or `{ message }`; the page
   * is error_pages_path's 503.html when the app has one. False or unset: live
   * (`kamal app live`). */
  readonly maintenance?: pulumi.Input<boolean | { message?: string }>;
  /** Which accessories this update may change (Kamal's `accessory boot|reboot`): "keep" (the
   * default, as `kamal deploy`: running accessories stay as they are, a change to one is
   * said at preview and stays pending), "apply" (every one), or the names of some. A new
   * accessory is booted either way. Default: $PULUMI_KAMAL_ACCESSORIES ("apply" or names,
   * comma-separated: what `pulumi-kamal accessory boot|reboot` sets), else "keep". */
  readonly accessories?: AccessoriesApplied;
  /** Kamal's `--skip-hooks`: this update's hooks are recorded as run, not run (a later
   * deploy runs them again). Default: $PULUMI_KAMAL_SKIP_HOOKS (what `pulumi-kamal -H` sets). */
  readonly skipHooks?: boolean;
  /** What Kamal has no key for, as the Service's: a release command (migrations), the watch
   * window after each switch, a canary. */
  readonly release?: ServiceArgs["release"];
  readonly watch?: ServiceArgs["watch"];
  readonly canary?: ServiceArgs["canary"];
  readonly onFailure?: ServiceArgs["onFailure"];
}

/**
 * A Kamal app from its config/deploy.yml: Traefik on the hosts of roles behind it, the
 * Service with every role, and the accessories. The same deployment `kamal deploy` makes,
 * with preview, state and history.
 */
export class KamalApp extends pulumi.ComponentResource {
  public readonly config: KamalConfig;
  /** What `kamal config` prints for the same file (and destination), plus what runs behind
   * the proxy here: export it to compare the two. */
  public readonly kamalConfig: pulumi.Output<ReturnType<typeof kamalConfigView>>;
  public readonly service: Service;
  /** The image built from the app's sources, with `build`. */
  public readonly image?: Image;
  public readonly traefik?: Traefik;
  public readonly accessories: Record<string, Accessory> = {};

  constructor(name: string, args: KamalAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:KamalApp", name, {}, opts);
    const cfg = loadKamalConfig({ file: args.configFile, destination: args.destination, allowShellInErb: args.allowShellInErb, kamal: args.kamalVersion, erb: args.erb });
    this.config = cfg;
    const appRoot = path.dirname(path.dirname(path.resolve(args.configFile)));
    const version = versionOf(name, args, cfg, appRoot);
    this.kamalConfig = pulumi.output(version).apply((v) => kamalConfigView(cfg, v));
    for (const w of cfg.warnings) pulumi.log.warn(`${path.basename(args.configFile)}: ${w}`, this);

    const { resolve: secret, names: secretsInFiles } = secretResolver(args, cfg);
    const hooks = new KamalHooks(this, name, { ...args, version }, cfg, appRoot, secret, secretsInFiles);
    const dependsOn: pulumi.Resource[] = [];
    const credentials = new Map<object, pulumi.Output<RegistryArgs>>();
    const cx: KamalContext = {
      secret,
      ssh: sshOf(cfg, args, secret),
      // A host as deploy.yml names it; an SSH config alias connects to its HostName.
      host: (address, env) => ({
        name: address,
        address: cfg.ssh.hostNames[address] ?? address,
        hostKey: args.hostKeys?.[address] ?? args.hostKeys?.[cfg.ssh.hostNames[address] ?? ""],
        env: env ? envArgs(env, secret) : undefined,
      }),
      credentials: (r) => {
        if (!credentials.has(r)) {
          credentials.set(r, pulumi.secret(pulumi.all([valueOf(r.username, secret), valueOf(r.password, secret)]).apply(([username, password]) => ({ server: r.server, username, password }))));
        }
        return credentials.get(r)!;
      },
      fileContent: (f, a) => (f.template ? renderTemplate(f, a.env, secret, appRoot, args.erb) : f.content),
    };

    // Kamal's order: pre-connect before any host is reached, pre-deploy before the proxy and
    // the app change; accessories are not part of a deploy.
    const preConnect = hooks.make("pre-connect", [], { lock: false, secrets: true });
    // Kamal's `kamal build push`: pre-build, then the build, before anything on a host changes.
    if (args.build) {
      const keep = args.build === "keep";
      const preBuild = hooks.make("pre-build", [preConnect], { lock: false, secrets: false, keep });
      // Kept: recorded as the last build left it, whatever the program says now.
      this.image = new Image(`${name}-image`, imageArgs(cfg, cx, { version, appRoot }), { parent: this, dependsOn: present(preConnect, preBuild), ...(keep ? { ignoreChanges: ["*"] } : {}) });
      dependsOn.push(this.image);
    }
    const preDeploy = hooks.make("pre-deploy", [preConnect, ...dependsOn], { lock: true, secrets: true });
    if (cfg.traefik) {
      this.traefik = new Traefik(`${name}-traefik`, traefikArgs(cfg, cx, { image: args.traefikImage, acme: args.acme }), { parent: this, dependsOn: [...dependsOn, ...present(preConnect, preDeploy)] });
      dependsOn.push(this.traefik);
    }

    const applied = accessoriesApplied(args.accessories);
    for (const a of cfg.accessories) {
      const hold = !(applied === "apply" || applied.includes(a.name));
      this.accessories[a.name] = new Accessory(`${name}-${a.name}`, accessoryArgs(cfg, a, cx, hold), {
        parent: this,
        dependsOn: [...(this.image ? [this.image] : []), ...present(preConnect), ...(a.proxy && this.traefik ? [this.traefik] : [])],
      });
      dependsOn.push(this.accessories[a.name]);
    }

    const maintenance = args.maintenance === undefined ? undefined : pulumi.output(args.maintenance).apply((m) => (m === false ? false : typeof m === "object" && m.message ? { message: m.message } : true));
    const deployed = this.image && args.build !== "keep" ? { image: this.image } : { image: cfg.image, version };
    const preAppBoot = hooks.make("pre-app-boot", [...dependsOn, ...present(preConnect, preDeploy)], { lock: true, secrets: false, hosts: "app" });
    this.service = new Service(name, serviceArgs(cfg, cx, { ...deployed, release: args.release, watch: args.watch, canary: args.canary, onFailure: args.onFailure, maintenance }), {
      parent: this,
      dependsOn: [...dependsOn, ...present(preConnect, preDeploy, preAppBoot)],
    });
    const postAppBoot = hooks.make("post-app-boot", [this.service], { lock: true, secrets: false, hosts: "app" });
    hooks.make("post-deploy", [this.service, ...present(postAppBoot)], { lock: false, secrets: true });
    this.registerOutputs({ containers: this.service.containers });
  }
}

/** The version to deploy: the one given, else (when building) Kamal's: the commit, with
 * `_uncommitted_` for a builder context over uncommitted changes. */
function versionOf(name: string, args: KamalAppArgs, cfg: KamalConfig, appRoot: string): pulumi.Input<string> {
  if (args.version !== undefined) return args.version;
  if (!args.build) throw new Error(`KamalApp "${name}": version: is required unless the image is built (build: true)`);
  try {
    return kamalVersion(appRoot, { contextDir: cfg.builder.context !== undefined ? path.resolve(appRoot, cfg.builder.context) : undefined });
  } catch (e) {
    throw new Error(`KamalApp "${name}": version: ${(e as Error).message}`);
  }
}

/** A secret's value by name, as a Pulumi secret; `at` is the config path naming it. */
type Resolve = (name: string, at: string) => pulumi.Output<string>;

const present = (...rs: (pulumi.Resource | undefined)[]) => rs.filter((r): r is pulumi.Resource => r !== undefined);

/** Kamal hooks a deploy here does not run where Kamal's would: pre-build when the deploy does
 * not build. (docker-setup and the proxy-reboot hooks are run by their own commands, as
 * Kamal's: `pulumi-kamal bootstrap`/`setup` and `proxy reboot`; a deploy never runs them.) */
const HOOKS_NOT_RUN: Record<string, string> = {
  "pre-build": "this deploy does not build the image (KamalApp's build is off: pulumi-kamal deploy --skip-push, or a rollback)",
};

/**
 * The project's Kamal hooks (`<hooks_path>/<name>`, default .kamal/hooks) as Hook resources,
 * in Kamal's order around the deploy, with Kamal's env. Each runs when the deploy changes (its
 * trigger: the version and everything the config deploys, secrets included) or its file does;
 * a missing file is no hook, as in Kamal.
 */
class KamalHooks {
  private readonly trigger: pulumi.Output<string>;
  private readonly env: pulumi.Input<Record<string, pulumi.Input<string>>>;
  private readonly dir: string;
  private readonly skip: boolean;

  constructor(
    private readonly parent: pulumi.Resource,
    private readonly name: string,
    args: KamalAppArgs & { version: pulumi.Input<string> },
    private readonly cfg: KamalConfig,
    private readonly appRoot: string,
    private readonly secret: Resolve,
    private readonly secretsInFiles: () => string[],
  ) {
    this.dir = path.resolve(appRoot, cfg.hooksPath);
    this.skip = hooksSkipped(args.skipHooks);
    const shown = JSON.stringify(cfg);
    this.trigger = pulumi.secret(
      pulumi.all([args.version, ...cfg.secretNames.map((n) => secret(n, "env.secret"))]).apply((values) => createHash("sha256").update(JSON.stringify([shown, values])).digest("hex")),
    );
    const version = pulumi.output(args.version);
    this.env = {
      KAMAL_SERVICE: cfg.service,
      KAMAL_VERSION: version,
      KAMAL_SERVICE_VERSION: version.apply((v) => `${cfg.service}@${v.includes("_") ? v : v.slice(0, 7)}`),
      ...(cfg.destination ? { KAMAL_DESTINATION: cfg.destination } : {}),
      KAMAL_COMMAND: "deploy",
    };
    for (const [hook, why] of Object.entries(HOOKS_NOT_RUN)) {
      if (hook === "pre-build" && args.build === true) continue;
      if (existsSync(path.join(this.dir, hook))) pulumi.log.warn(`${cfg.hooksPath}/${hook}: not run (${why})`, parent);
    }
  }

  /** The hook's resource, when the project has the file. `hosts`: every host of the app
   * (roles and accessories), or only those of its roles (app boot). */
  make(hook: string, dependsOn: (pulumi.Resource | undefined)[], opts: { lock: boolean; secrets: boolean; hosts?: "app"; keep?: boolean }): Hook | undefined {
    const file = path.join(this.dir, hook);
    if (!existsSync(file)) return undefined;
    const apps = this.cfg.roles.flatMap((r) => r.hosts.map((h) => h.address));
    const hosts = [...new Set(opts.hosts === "app" ? apps : [...apps, ...this.cfg.accessories.flatMap((a) => a.hosts)])];
    const secretEnv = opts.secrets ? pulumi.secret(pulumi.all(Object.fromEntries(this.secretsInFiles().map((n) => [n, this.secret(n, `${this.cfg.hooksPath}/${hook}`)])))) : undefined;
    return new Hook(`${this.name}-hook-${hook}`, {
      name: hook,
      path: file,
      contentHash: createHash("sha256").update(readFileSync(file)).digest("hex"),
      cwd: this.appRoot,
      trigger: this.trigger,
      env: pulumi.output(this.env).apply((env) => ({ ...env, KAMAL_HOSTS: hosts.join(","), KAMAL_LOCK: String(opts.lock) })),
      ...(secretEnv ? { secretEnv } : {}),
      ...(this.skip ? { skip: true } : {}),
    }, { parent: this.parent, dependsOn: present(...dependsOn), ...(opts.keep ? { ignoreChanges: ["*"] } : {}) });
  }
}

/** Finds each named secret: explicit values, Pulumi config secrets, then the secrets files
 * (evaluated only then). A missing one fails before anything is deployed, naming it (never a
 * value). Also: every name the secrets files set (what Kamal gives its hooks). */
function secretResolver(args: KamalAppArgs, cfg: KamalConfig): { resolve: Resolve; names: () => string[] } {
  const appRoot = path.dirname(path.dirname(path.resolve(args.configFile)));
  let files: SecretsFiles;
  try {
    files = new SecretsFiles({ appRoot, kamal: cfg.kamal, destination: cfg.destination, secretsPath: cfg.secretsPath, files: args.secretsFiles });
  } catch (e) {
    throw new Error(`KamalApp: ${(e as Error).message}`);
  }
  const config = new pulumi.Config();
  const resolve: Resolve = (key, at) => {
    const explicit = args.secrets?.[key];
    if (explicit !== undefined) return pulumi.secret(explicit);
    const fromConfig = config.getSecret(key);
    if (fromConfig !== undefined) return fromConfig;
    if (files.has(key)) {
      try {
        return pulumi.secret(files.get(key));
      } catch (e) {
        throw new Error(`KamalApp: ${at}: ${(e as Error).message}`);
      }
    }
    const where = files.candidates.length ? `or put it in ${files.candidates.join(" or ")}` : "or name a secrets file in secretsFiles";
    throw new Error(`KamalApp: ${at}: secret ${key} has no value: set it with \`pulumi config set --secret ${key} …\`, pass it in secrets, ${where}`);
  };
  return { resolve, names: () => files.keys() };
}

/** An accessory's `.erb` file, rendered as Kamal renders it: ERB with the accessory's clear
 * env and secrets in ENV. The result is a secret. */
function renderTemplate(f: KamalAccessory["files"][number], env: KamalEnv, secret: Resolve, appRoot: string, renderer?: "ruby" | "builtin"): pulumi.Output<string> {
  const secrets = env.secret.map(secretEnvName);
  return pulumi.secret(
    pulumi.all(secrets.map((s) => secret(s.secret, "accessories.files"))).apply((values) =>
      renderErb(f.content, {
        env: { ...process.env, ...env.clear, ...Object.fromEntries(secrets.map((s, i) => [s.name, values[i]])) },
        root: appRoot,
        file: f.source,
        renderer,
      }),
    ),
  );
}

function valueOf(ref: ValueRef, secret: Resolve): pulumi.Input<string> {
  return "value" in ref ? ref.value : secret(ref.secret, "registry");
}

function expandHome(p: string): string {
  return p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

/** How deploy.yml says to reach its hosts, as plain SSH settings (the CLI's init and
 * bootstrap read them too): every key file, the agent's use and forwarding, the jump host or
 * proxy command. Not `key_data` (see kamalKeyData). */
export function kamalSsh(cfg: KamalConfig): Omit<PlainSshArgs, "privateKey" | "privateKeys"> {
  const [first, ...more] = cfg.ssh.keyPaths.map(expandHome);
  return dropUndefined({
    user: cfg.ssh.user,
    port: cfg.ssh.port,
    privateKeyPath: first,
    privateKeyPaths: more.length ? more : undefined,
    keysOnly: cfg.ssh.keysOnly,
    forwardAgent: cfg.ssh.forwardAgent,
    proxy: cfg.ssh.proxy,
    proxyCommand: cfg.ssh.proxyCommand,
    maxConcurrentStarts: cfg.ssh.maxConcurrentStarts,
  });
}

/** deploy.yml's `key_data` as the connection's keys: each named secret's value (or a key
 * written out), the first as privateKey, the rest as privateKeys. */
export function kamalKeyData<T>(cfg: KamalConfig, value: (k: KeyData) => T): { privateKey?: T; privateKeys?: T[] } {
  const [first, ...more] = cfg.ssh.keyData.map(value);
  return dropUndefined({ privateKey: first, privateKeys: more.length ? more : undefined });
}

function sshOf(cfg: KamalConfig, args: KamalAppArgs, secret: Resolve): SshArgs {
  // Private keys are secrets from here on, even written out in deploy.yml.
  const keys = kamalKeyData(cfg, (k) => (k instanceof SecretText ? pulumi.secret(k.reveal()) : secret(k.secret, "ssh.key_data")));
  return { ...kamalSsh(cfg), ...keys, ...dropUndefined(args.ssh ?? {}) };
}

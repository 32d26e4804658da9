/**
 * The dynamic resources. Pulumi serializes each provider object into the state; ours is a
 * few lines that name a kind and `require` the compiled implementation when called. The
 * serialized text therefore never changes when the handlers change or the SDK is upgraded
 * (no spurious diffs), and read/delete run the current code, not the code of the day the
 * resource was created.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Kind } from "./runtime";

function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, "package.json");
    if (existsSync(pj) && JSON.parse(readFileSync(pj, "utf8")).name === "pulumi-kamal") return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error("pulumi-kamal: cannot find the package root");
    dir = up;
  }
}

/** Compiled handlers, loaded by the provider process (which has no TypeScript loader). */
export const IMPLEMENTATION = path.join(packageRoot(), "dist", "provider", "runtime.js");

function providerFor(kind: Kind): pulumi.dynamic.ResourceProvider {
  const impl = IMPLEMENTATION;
  const load = () => require(impl).providers[kind];
  return {
    check: (olds, news) => load().check(olds, news),
    diff: (id, olds, news) => load().diff(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read(id, props),
    update: (id, olds, news) => load().update(id, olds, news),
    delete: (id, props) => load().delete(id, props),
  };
}

const providers: Record<Kind, pulumi.dynamic.ResourceProvider> = {
  app: providerFor("app"),
  traefik: providerFor("traefik"),
  envFile: providerFor("envFile"),
  accessory: providerFor("accessory"),
};

type In<T> = { [K in keyof T]: pulumi.Input<T[K]> };

/**
 * Containers and files have fixed names on a host, so a replacement must remove the old one
 * before creating the new one: created first, the new container would be removed by the
 * old resource's delete.
 */
function options(opts: pulumi.CustomResourceOptions | undefined, secretOutputs: string[]): pulumi.CustomResourceOptions {
  return { ...opts, deleteBeforeReplace: true, additionalSecretOutputs: secretOutputs };
}

/** SSH settings as the provider receives them. */
export interface ConnectionInputs {
  host: string;
  port?: number;
  user?: string;
  privateKey?: string;
  privateKeyPath?: string;
  passphrase?: string;
  password?: string;
  agent?: string | boolean;
  knownHosts?: string;
  knownHostsPath?: string;
  hostKey?: string;
  insecureIgnoreHostKey?: boolean;
  proxy?: ConnectionInputs;
  connectTimeout?: number | string;
  keepaliveInterval?: number | string;
  dialAttempts?: number;
  maxChannels?: number;
}

export interface RegistryInputs {
  server: string;
  username: string;
  password: string;
}

export interface HealthcheckInputs {
  path?: string;
  port?: number;
  cmd?: string;
  interval?: number | string;
  retries?: number;
  deadline?: number | string;
}

type DockerOptions = Record<string, string | number | boolean | (string | number)[]>;

export interface AppContainerInputs {
  configPath: string;
  hostName: string;
  connection: ConnectionInputs;
  service: string;
  role: string;
  destination?: string;
  image: string;
  version: string;
  registry?: RegistryInputs;
  cmd?: string | string[];
  env?: Record<string, string>;
  envFile?: { path: string; hash: string };
  labels?: Record<string, string>;
  volumes?: string[];
  options?: DockerOptions;
  logging?: { driver?: string; options?: Record<string, string> };
  traefik?: boolean;
  appPort?: number;
  healthcheck?: HealthcheckInputs;
  stopWaitTime?: number | string;
  retain?: number;
}

/** One role of a service on one host (the swap happens here). */
export class AppContainer extends pulumi.dynamic.Resource {
  declare readonly containerName: pulumi.Output<string>;
  declare readonly containerId: pulumi.Output<string>;
  declare readonly imageId: pulumi.Output<string>;
  declare readonly imageDigest: pulumi.Output<string>;
  declare readonly runningVersion: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;
  declare readonly pulled: pulumi.Output<boolean>;

  constructor(name: string, args: In<AppContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      providers.app,
      name,
      { ...args, containerName: undefined, containerId: undefined, imageId: undefined, imageDigest: undefined, runningVersion: undefined, status: undefined, pulled: undefined },
      options(opts, ["connection", "registry"]),
      "kamal",
      "AppContainer",
    );
  }
}

export interface TraefikContainerInputs {
  configPath?: string;
  hostName: string;
  connection: ConnectionInputs;
  image: string;
  registry?: RegistryInputs;
  hostPort?: number | string;
  apiPort?: number;
  args?: Record<string, string | number | boolean>;
  labels?: Record<string, string>;
  options?: DockerOptions;
  env?: Record<string, string>;
  envFile?: { path: string; hash: string };
}

export class TraefikContainer extends pulumi.dynamic.Resource {
  declare readonly containerId: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;

  constructor(name: string, args: In<TraefikContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      providers.traefik,
      name,
      { ...args, containerId: undefined, status: undefined, restartedAt: undefined },
      options(opts, ["connection", "registry"]),
      "kamal",
      "TraefikContainer",
    );
  }
}

export interface EnvFileInputs {
  configPath?: string;
  hostName: string;
  connection: ConnectionInputs;
  path: string;
  env: Record<string, string>;
}

export class EnvFileResource extends pulumi.dynamic.Resource {
  declare readonly hash: pulumi.Output<string>;
  declare readonly remotePath: pulumi.Output<string>;

  constructor(name: string, args: In<EnvFileInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      providers.envFile,
      name,
      { ...args, hash: undefined, remotePath: undefined },
      options(opts, ["env", "hash", "connection"]),
      "kamal",
      "EnvFile",
    );
  }
}

export interface AccessoryContainerInputs {
  configPath?: string;
  hostName: string;
  connection: ConnectionInputs;
  service: string;
  name: string;
  containerName?: string;
  image: string;
  registry?: RegistryInputs;
  port?: number | string;
  cmd?: string | string[];
  env?: Record<string, string>;
  envFile?: { path: string; hash: string };
  files?: { target: string; content: string; mode?: string }[];
  directories?: string[];
  volumes?: string[];
  options?: DockerOptions;
  labels?: Record<string, string>;
  stopWaitTime?: number | string;
  deleteDataOnDestroy?: boolean;
}

export class AccessoryContainer extends pulumi.dynamic.Resource {
  declare readonly containerId: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;
  declare readonly dataDir: pulumi.Output<string>;

  constructor(name: string, args: In<AccessoryContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      providers.accessory,
      name,
      { ...args, containerId: undefined, status: undefined, dataDir: undefined },
      options(opts, ["connection", "registry", "files"]),
      "kamal",
      "AccessoryContainer",
    );
  }
}

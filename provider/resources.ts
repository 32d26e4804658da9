/**
 * The dynamic resources. A dynamic provider lives in the state as source text
 * (`__provider`); ours is a few lines that name a kind and `require` the compiled
 * implementation when called. The text therefore never changes when the handlers change or
 * the SDK is upgraded (no spurious diffs), and read/delete run the current code, not the
 * code of the day the resource was created.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { SshConnectionConfig } from "./config/schemas";
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

/**
 * The provider as Pulumi's dynamic-provider host loads it from state (`__provider`): a
 * module whose `handler()` returns the CRUD methods. Written out rather than produced by
 * Pulumi's closure serializer: it stays byte-for-byte the same across SDK versions, carries
 * no copy of our code, and the program skips the serializer (and the TypeScript parser it
 * loads) entirely.
 */
export function providerSource(kind: Kind, implementation = IMPLEMENTATION): string {
  const methods = ["check", "diff", "create", "read", "update", "delete"];
  return [
    "exports.handler = function () {",
    `  var implementation = ${JSON.stringify(implementation)}, kind = ${JSON.stringify(kind)};`,
    "  function load() { return require(implementation).providers[kind]; }",
    "  return {",
    ...methods.map((m) => `    ${m}: function () { var p = load(); return p.${m}.apply(p, arguments); },`),
    "  };",
    "};",
    "",
  ].join("\n");
}

/** A resource served by our dynamic provider: Pulumi's dynamic.Resource, minus the closure
 * serialization. Same type tokens (`pulumi-nodejs:dynamic/kamal:<Type>`), same plugin. */
abstract class KamalResource extends pulumi.CustomResource {
  protected constructor(kind: Kind, type: string, name: string, props: pulumi.Inputs, opts: pulumi.CustomResourceOptions) {
    super(`pulumi-nodejs:dynamic/kamal:${type}`, name, { ...props, __provider: providerSource(kind) }, opts);
  }
}

type In<T> = { [K in keyof T]: pulumi.Input<T[K]> };

/**
 * Containers and files have fixed names on a host, so a replacement must remove the old one
 * before creating the new one: created first, the new container would be removed by the
 * old resource's delete.
 */
function options(opts: pulumi.CustomResourceOptions | undefined, secretOutputs: string[]): pulumi.CustomResourceOptions {
  return { ...opts, deleteBeforeReplace: true, additionalSecretOutputs: secretOutputs };
}

/** SSH settings as the provider receives them: the validated shape, defaults optional. */
export type ConnectionInputs = Omit<Partial<SshConnectionConfig>, "host" | "proxy" | "connectTimeout" | "keepaliveInterval"> & {
  host: string;
  proxy?: ConnectionInputs;
  connectTimeout?: number | string;
  keepaliveInterval?: number | string;
};

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
export class AppContainer extends KamalResource {
  declare readonly containerName: pulumi.Output<string>;
  declare readonly containerId: pulumi.Output<string>;
  declare readonly imageId: pulumi.Output<string>;
  declare readonly imageDigest: pulumi.Output<string>;
  declare readonly runningVersion: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;
  declare readonly pulled: pulumi.Output<boolean>;

  constructor(name: string, args: In<AppContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      "app",
      "AppContainer",
      name,
      { ...args, containerName: undefined, containerId: undefined, imageId: undefined, imageDigest: undefined, runningVersion: undefined, status: undefined, pulled: undefined },
      options(opts, ["connection", "registry"]),
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

export class TraefikContainer extends KamalResource {
  declare readonly containerId: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;

  constructor(name: string, args: In<TraefikContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      "traefik",
      "TraefikContainer",
      name,
      { ...args, containerId: undefined, status: undefined, restartedAt: undefined },
      options(opts, ["connection", "registry"]),
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

export class EnvFileResource extends KamalResource {
  declare readonly hash: pulumi.Output<string>;
  declare readonly remotePath: pulumi.Output<string>;

  constructor(name: string, args: In<EnvFileInputs>, opts?: pulumi.CustomResourceOptions) {
    super("envFile", "EnvFile", name, { ...args, hash: undefined, remotePath: undefined }, options(opts, ["env", "hash", "connection"]));
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

export class AccessoryContainer extends KamalResource {
  declare readonly containerId: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;
  declare readonly dataDir: pulumi.Output<string>;

  constructor(name: string, args: In<AccessoryContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      "accessory",
      "AccessoryContainer",
      name,
      { ...args, containerId: undefined, status: undefined, dataDir: undefined },
      options(opts, ["connection", "registry", "files"]),
    );
  }
}

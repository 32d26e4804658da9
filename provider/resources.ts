/**
 * The dynamic resources. A dynamic provider lives in the state as source text
 * (`__provider`); ours is a few lines that name a kind and load the implementation by
 * package name, as any Node module is found: from the project's own node_modules, wherever
 * the project is checked out. The text names no path and no version, so it is the same on
 * every machine and in every release (a test pins it), and read/delete always run the
 * installed code, never the code of the day the resource was created.
 *
 * The input types are the schemas' (config/schemas.ts): one declaration per field.
 */
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { secretFields } from "./config/fields";
import { accessoryOutputs, appOutputs, envFileOutputs, hookOutputs, imageOutputs, outputNames, releaseOutputs, traefikOutputs } from "./config/outputs";
import { schemas } from "./config/kinds";
import type { ImageBuildInput } from "./config/image";
import { type AccessoryContainerInput, type AppContainerInput, type EnvFileInput, type ReleaseInput, type HookInput, type TraefikContainerInput } from "./config/schemas";
import type { Kind } from "./runtime";

/** The module the stored provider text loads (package.json `exports`). */
export const IMPLEMENTATION = "pulumi-kamal/provider";

/**
 * The provider as Pulumi's dynamic-provider host loads it from state (`__provider`): a
 * module whose `handler()` returns the CRUD methods. The host compiles it with the
 * project directory as its base, so `require` finds the package the program depends on.
 */
export function providerSource(kind: Kind): string {
  const methods = ["check", "diff", "create", "read", "update", "delete"];
  return [
    "exports.handler = function () {",
    `  var kind = ${JSON.stringify(kind)}, implementation;`,
    "  function load() {",
    "    if (!implementation) {",
    "      try {",
    `        implementation = require(require.resolve(${JSON.stringify(IMPLEMENTATION)}, { paths: [process.cwd()] }));`,
    "      } catch (e) {",
    `        if (e && e.code === "MODULE_NOT_FOUND" && String(e.message).indexOf(${JSON.stringify(IMPLEMENTATION)}) >= 0) {`,
    `          throw new Error("pulumi-kamal is not installed in " + process.cwd() + ": run npm install there (the stack's resources are served by the package the project depends on)");`,
    "        }",
    "        throw e;",
    "      }",
    "    }",
    "    return implementation.providers[kind];",
    "  }",
    "  return {",
    ...methods.map((m) => `    ${m}: function () { var p = load(); return p.${m}.apply(p, arguments); },`),
    "  };",
    "};",
    "",
  ].join("\n");
}

/** A resource served by our dynamic provider: Pulumi's dynamic.Resource, minus the closure
 * serialization. Same type tokens (`pulumi-nodejs:dynamic/kamal:<Type>`), same plugin.
 * Containers and files have fixed names on a host, so a replacement removes the old one
 * before creating the new one; every field the schema declares secret is encrypted in the
 * state's outputs too. */
abstract class KamalResource extends pulumi.CustomResource {
  protected constructor(kind: Kind, type: string, name: string, props: pulumi.Inputs, opts: pulumi.CustomResourceOptions | undefined, extraSecrets: string[] = []) {
    super(`pulumi-nodejs:dynamic/kamal:${type}`, name, { ...props, __provider: providerSource(kind) }, {
      ...opts,
      deleteBeforeReplace: true,
      additionalSecretOutputs: [...secretFields(schemas[kind]), ...extraSecrets],
    });
  }
}

/** A value where every level may be a Pulumi Input (an Output, a promise, or plain). */
export type DeepInput<T> = T extends string | number | boolean | undefined | null
  ? pulumi.Input<T>
  : T extends readonly (infer E)[]
    ? pulumi.Input<DeepInput<E>[]>
    : T extends object
      ? pulumi.Input<{ [K in keyof T]: DeepInput<T[K]> }>
      : pulumi.Input<T>;

/** A resource's inputs: each field of the schema's input type, as a Pulumi Input. */
export type ResourceInputs<T> = { [K in keyof T]: DeepInput<T[K]> };

/** A resource's outputs (config/outputs.ts) as the properties of its class. */
type OutputProps<S extends z.ZodObject> = { readonly [K in keyof z.output<S>]: pulumi.Output<z.output<S>[K]> };

/** The outputs as inputs the engine fills in. */
function unset(outputs: z.ZodObject): Record<string, undefined> {
  return Object.fromEntries(outputNames(outputs).map((k) => [k, undefined]));
}

export type AppContainerInputs = AppContainerInput;
export type TraefikContainerInputs = TraefikContainerInput;
export type EnvFileInputs = EnvFileInput;
export type AccessoryContainerInputs = AccessoryContainerInput;
export type ReleaseInputs = ReleaseInput;
export type HookInputs = HookInput;
export type ImageBuildInputs = ImageBuildInput;

/** One role of a service on one host (the swap happens here). */
export interface AppContainer extends OutputProps<typeof appOutputs> {}
export class AppContainer extends KamalResource {
  constructor(name: string, args: ResourceInputs<AppContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super("app", "AppContainer", name, { ...args, ...unset(appOutputs) }, opts);
  }
}

export interface TraefikContainer extends OutputProps<typeof traefikOutputs> {}
export class TraefikContainer extends KamalResource {
  constructor(name: string, args: ResourceInputs<TraefikContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super("traefik", "TraefikContainer", name, { ...args, ...unset(traefikOutputs) }, opts);
  }
}

export interface EnvFileResource extends OutputProps<typeof envFileOutputs> {}
export class EnvFileResource extends KamalResource {
  constructor(name: string, args: ResourceInputs<EnvFileInputs>, opts?: pulumi.CustomResourceOptions) {
    // The hash of secret content is itself kept secret (it would confirm a guessed value).
    super("envFile", "EnvFile", name, { ...args, ...unset(envFileOutputs) }, opts, ["hash"]);
  }
}

export interface AccessoryContainer extends OutputProps<typeof accessoryOutputs> {}
export class AccessoryContainer extends KamalResource {
  constructor(name: string, args: ResourceInputs<AccessoryContainerInputs>, opts?: pulumi.CustomResourceOptions) {
    super("accessory", "AccessoryContainer", name, { ...args, ...unset(accessoryOutputs) }, opts);
  }
}

/** A service's release command: its update is the run (see handlers/release.ts). */
export interface ReleaseCommand extends OutputProps<typeof releaseOutputs> {}
export class ReleaseCommand extends KamalResource {
  constructor(name: string, args: ResourceInputs<ReleaseInputs>, opts?: pulumi.CustomResourceOptions) {
    super("release", "Release", name, { ...args, ...unset(releaseOutputs) }, opts);
  }
}

/** A local hook (Kamal's .kamal/hooks/<name>): its update is the run (see handlers/hook.ts). */
export interface Hook extends OutputProps<typeof hookOutputs> {}
export class Hook extends KamalResource {
  constructor(name: string, args: ResourceInputs<HookInputs>, opts?: pulumi.CustomResourceOptions) {
    super("hook", "Hook", name, { ...args, ...unset(hookOutputs) }, opts);
  }
}

/** An image build and push (see handlers/image.ts): its update is the build. */
export interface ImageBuild extends OutputProps<typeof imageOutputs> {}
export class ImageBuild extends KamalResource {
  constructor(name: string, args: ResourceInputs<ImageBuildInputs>, opts?: pulumi.CustomResourceOptions) {
    super("image", "Image", name, { ...args, ...unset(imageOutputs) }, opts);
  }
}

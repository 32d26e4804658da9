import * as pulumi from "@pulumi/pulumi";
import type { AccessoryFileInput } from "../provider/config/schemas";
import { AccessoryContainer, type AccessoryContainerInputs, type ResourceInputs } from "../provider/resources";
import { configError, connectionFor, dropUnset, envFileRef, hostKeyName, pickArgs, registryInput, resolveHost, runDirectoryOf, secretEnvFile, type EnvArgs, type HostArg, type RegistryArgs, type SshArgs } from "./common";

/** A file uploaded to the accessory's directory on the host and mounted at `target`
 * (provider/config/schemas.ts `accessoryFile`). */
export type AccessoryFileArgs = ResourceInputs<AccessoryFileInput>;

/** What an Accessory takes from the provider's schema as it is (provider/config/schemas.ts
 * `accessoryContainer`: each field's type, default, meaning and effect are declared there). */
const SETTINGS = ["image", "port", "cmd", "directories", "volumes", "options", "labels", "stopWaitTime", "deleteDataOnDestroy", "destination", "lockWait", "runDirectory", "hold", "proxy"] as const;

export type AccessoryArgs = ResourceInputs<Pick<AccessoryContainerInputs, (typeof SETTINGS)[number]>> & {
  /** The service this accessory belongs to: the container is "<service>-<name>". */
  readonly service: string;
  /** Accessory name (default: the component name). */
  readonly name?: string;
  /** Container name (default "<service>-<name>"); also names its data directory. */
  readonly containerName?: string;
  readonly hosts: HostArg[];
  readonly ssh: SshArgs;
  readonly registry?: pulumi.Input<RegistryArgs>;
  readonly env?: EnvArgs;
  /** Files uploaded to the accessory's directory on the host and mounted at `target`. */
  readonly files?: AccessoryFileArgs[];
};

/** A long-lived container (database, cache) with its data in host directories. A change
 * reboots it with the data kept. */
export class Accessory extends pulumi.ComponentResource {
  public readonly resources: Record<string, AccessoryContainer> = {};

  constructor(name: string, args: AccessoryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:Accessory", name, {}, opts);
    const accessory = args.name ?? name;
    const path = `accessories.${accessory}`;
    if (!args.hosts?.length) throw configError("Accessory", name, `${path}.hosts`, "must list at least one host");
    for (const host of args.hosts.map(resolveHost)) {
      const envFile = secretEnvFile(this, `${name}-env-${hostKeyName(host)}`, args.ssh, host,
        `${runDirectoryOf(args)}/env/accessories/${args.containerName ?? `${args.service}-${accessory}`}.env`, args.env?.secret);
      this.resources[host.name] = new AccessoryContainer(
        `${name}-${hostKeyName(host)}`,
        dropUnset({
          ...pickArgs(args, SETTINGS),
          hostName: host.name,
          connection: connectionFor(args.ssh, host),
          service: args.service,
          name: accessory,
          containerName: args.containerName,
          registry: registryInput(args.registry),
          env: args.env?.clear,
          envFile: envFileRef(envFile),
          // File contents are secrets (config files often hold passwords), even as plain strings.
          files: args.files?.length ? pulumi.secret(pulumi.output(args.files)) : undefined,
        }) as ResourceInputs<AccessoryContainerInputs>,
        { parent: this, dependsOn: envFile ? [envFile] : [] },
      );
    }
    this.registerOutputs({});
  }
}

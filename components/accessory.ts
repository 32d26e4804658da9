import * as pulumi from "@pulumi/pulumi";
import { AccessoryContainer, type AccessoryContainerInputs, type ResourceInputs } from "../provider/resources";
import { configError, connectionFor, dropUnset, envFileRef, hostKeyName, registryInput, resolveHost, secretEnvFile, type EnvArgs, type HostArg, type RegistryArgs, type SshArgs } from "./common";

export interface AccessoryFileArgs {
  /** Absolute path inside the container. */
  readonly target: string;
  /** File content (may be a secret). */
  readonly content: pulumi.Input<string>;
  /** Octal mode, default "0644". */
  readonly mode?: string;
  /** Mount options, e.g. "ro". */
  readonly options?: string;
}

export interface AccessoryArgs {
  /** The service this accessory belongs to: the container is "<service>-<name>". */
  readonly service: string;
  /** Accessory name (default: the component name). */
  readonly name?: string;
  /** Container name (default "<service>-<name>"); also names its data directory. */
  readonly containerName?: string;
  readonly image: pulumi.Input<string>;
  readonly hosts: HostArg[];
  readonly ssh: SshArgs;
  readonly registry?: pulumi.Input<RegistryArgs>;
  /** Published port: 5432, "5432:5432" or "127.0.0.1:5432:5432". */
  readonly port?: pulumi.Input<number | string>;
  readonly cmd?: pulumi.Input<string | string[]>;
  readonly env?: EnvArgs;
  /** Files uploaded to the accessory's directory on the host and mounted at `target`. */
  readonly files?: AccessoryFileArgs[];
  /** "host_dir:/container/path"; host_dir relative to ~/<service>-<name> on the host. */
  readonly directories?: string[];
  readonly volumes?: pulumi.Input<string>[];
  readonly options?: Record<string, pulumi.Input<string | number | boolean | (string | number)[]>>;
  readonly labels?: Record<string, pulumi.Input<string>>;
  readonly stopWaitTime?: pulumi.Input<number | string>;
  /** Delete ~/<service>-<name> when destroyed (default false: data is kept). */
  readonly deleteDataOnDestroy?: boolean;
  /** Kamal destination: a change holds the deploy lock `.kamal/lock-<service>[-<destination>]`
   * on the host, as Kamal's accessory commands do. */
  readonly destination?: string;
  /** Seconds to wait for that lock when another deploy holds it, before refusing (default 120). */
  readonly lockWait?: pulumi.Input<number | string>;
}

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
        `.kamal/env/accessories/${args.containerName ?? `${args.service}-${accessory}`}.env`, args.env?.secret);
      this.resources[host.name] = new AccessoryContainer(
        `${name}-${hostKeyName(host)}`,
        dropUnset({
          hostName: host.name,
          connection: connectionFor(args.ssh, host),
          service: args.service,
          name: accessory,
          containerName: args.containerName,
          image: args.image,
          registry: registryInput(args.registry),
          port: args.port,
          cmd: args.cmd,
          env: args.env?.clear,
          envFile: envFileRef(envFile),
          // File contents are secrets (config files often hold passwords), even as plain strings.
          files: args.files?.length ? pulumi.secret(pulumi.output(args.files)) : undefined,
          directories: args.directories,
          volumes: args.volumes,
          options: args.options,
          labels: args.labels,
          stopWaitTime: args.stopWaitTime,
          deleteDataOnDestroy: args.deleteDataOnDestroy,
          destination: args.destination,
          lockWait: args.lockWait,
        }) as ResourceInputs<AccessoryContainerInputs>,
        { parent: this, dependsOn: envFile ? [envFile] : [] },
      );
    }
    this.registerOutputs({});
  }
}

import * as pulumi from "@pulumi/pulumi";
import { TraefikContainer, type ResourceInputs, type TraefikContainerInputs } from "../provider/resources";
import { parseProxyReboots, PROXY_REBOOT_CONFIG } from "./proxyRebootConfig";
import { configError, connectionFor, dropUnset, envFileRef, hostKeyName, pickArgs, registryInput, resolveHost, runDirectoryOf, secretEnvFile, type EnvArgs, type HostArg, type RegistryArgs, type SshArgs } from "./common";

/** What a Traefik takes from the provider's schema as it is (provider/config/schemas.ts
 * `traefikContainer`: each field's type, default, meaning and effect are declared there). */
const SETTINGS = ["image", "hostPort", "apiPort", "args", "tls", "forwardedHeaders", "labels", "options", "networks", "lockService", "destination", "lockWait", "runDirectory"] as const;

export type TraefikArgs = ResourceInputs<Pick<TraefikContainerInputs, (typeof SETTINGS)[number]>> & {
  /** Hosts to run Traefik on (usually every host of a role behind Traefik). */
  readonly hosts: HostArg[];
  readonly ssh: SshArgs;
  readonly registry?: pulumi.Input<RegistryArgs>;
  /** Env of the Traefik container; `secret` values go to an env file on the host. */
  readonly env?: EnvArgs;
};

/** Traefik on each host, reading the route files the swaps write and container labels. A
 * change restarts it, handing its ports over without refusing a connection (see docs/components/traefik.md). */
export class Traefik extends pulumi.ComponentResource {
  public readonly resources: Record<string, TraefikContainer> = {};

  constructor(name: string, args: TraefikArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:Traefik", name, {}, opts);
    if (!args.hosts?.length) throw configError("Traefik", name, "hosts", "must list at least one host");
    // `pulumi-kamal proxy reboot`: the operator's restart of some hosts' Traefik.
    const [ns, key] = PROXY_REBOOT_CONFIG.split(":");
    const reboots = parseProxyReboots(new pulumi.Config(ns).get(key));
    for (const host of args.hosts.map(resolveHost)) {
      const envFile = secretEnvFile(this, `${name}-env-${hostKeyName(host)}`, args.ssh, host, `${runDirectoryOf(args)}/env/traefik/traefik.env`, args.env?.secret);
      this.resources[host.name] = new TraefikContainer(
        `${name}-${hostKeyName(host)}`,
        {
          // `tls: {}` (HTTPS with certificates of the roles' own) is a setting, not "unset".
          ...(args.tls !== undefined ? { tls: args.tls } : {}),
          ...dropUnset({
            ...pickArgs(args, SETTINGS),
            hostName: host.name,
            connection: connectionFor(args.ssh, host),
            registry: registryInput(args.registry),
            env: args.env?.clear,
            envFile: envFileRef(envFile),
            rebooted: reboots[host.name],
          }),
        } as ResourceInputs<TraefikContainerInputs>,
        { parent: this, dependsOn: envFile ? [envFile] : [] },
      );
    }
    this.registerOutputs({});
  }
}

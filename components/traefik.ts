import * as pulumi from "@pulumi/pulumi";
import type { TlsInput } from "../provider/config/schemas";
import { TraefikContainer, type ResourceInputs, type TraefikContainerInputs } from "../provider/resources";
import { configError, connectionFor, dropUnset, envFileRef, hostKeyName, registryInput, resolveHost, secretEnvFile, type EnvArgs, type HostArg, type RegistryArgs, type SshArgs } from "./common";

export interface TraefikArgs {
  /** Hosts to run Traefik on (usually every host of a role behind Traefik). */
  readonly hosts: HostArg[];
  readonly ssh: SshArgs;
  /** Traefik image with tag, e.g. "traefik:v3.6". */
  readonly image: pulumi.Input<string>;
  readonly registry?: pulumi.Input<RegistryArgs>;
  /** Host port published to Traefik's "http" entrypoint (default 80): Kamal's host_port. */
  readonly hostPort?: pulumi.Input<number | string>;
  /** Traefik API on the host's 127.0.0.1 (default 8080; 0 turns it off). Swaps use it to
   * confirm routing changes instead of waiting a fixed time. */
  readonly apiPort?: pulumi.Input<number>;
  /** Extra Traefik arguments: `{ "accesslog": true, "log.level": "ERROR" }`. */
  readonly args?: Record<string, pulumi.Input<string | number | boolean>>;
  /** HTTPS: an entrypoint on port 443 (`hostPort`), an optional redirect of every plain
   * request, and an ACME resolver (`acme`, Let's Encrypt by default: any ACME directory,
   * HTTP-01 or TLS-ALPN-01) whose certificates are kept on the host across restarts. Roles
   * opt in with `proxy.ssl`. */
  readonly tls?: pulumi.Input<ResourceInputs<TlsInput>>;
  /** Trust the X-Forwarded-* headers clients send: true (behind a load balancer that sets
   * them) or the addresses/CIDRs of the proxies in front. Default: not trusted. */
  readonly forwardedHeaders?: pulumi.Input<true | string[]>;
  readonly labels?: Record<string, pulumi.Input<string>>;
  readonly options?: Record<string, pulumi.Input<string | number | boolean | (string | number)[]>>;
  readonly env?: EnvArgs;
  /** User-defined Docker networks Traefik joins besides the default bridge (created if
   * missing), to reach apps that run on them: Kamal 2's `kamal`. */
  readonly networks?: string[];
  /** A change holds the deploy lock `.kamal/lock-<lockService>[-<destination>]` on the host
   * (default "traefik"; KamalApp sets its service, so `kamal deploy` of that app waits too). */
  readonly lockService?: string;
  readonly destination?: string;
  /** Seconds to wait for that lock when another deploy holds it, before refusing (default 120). */
  readonly lockWait?: pulumi.Input<number | string>;
}

/** Traefik on each host, reading the route files the swaps write and container labels. A
 * change restarts it, handing its ports over without refusing a connection (see docs/components/traefik.md). */
export class Traefik extends pulumi.ComponentResource {
  public readonly resources: Record<string, TraefikContainer> = {};

  constructor(name: string, args: TraefikArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:Traefik", name, {}, opts);
    if (!args.hosts?.length) throw configError("Traefik", name, "hosts", "must list at least one host");
    for (const host of args.hosts.map(resolveHost)) {
      const envFile = secretEnvFile(this, `${name}-env-${hostKeyName(host)}`, args.ssh, host, ".kamal/env/traefik/traefik.env", args.env?.secret);
      this.resources[host.name] = new TraefikContainer(
        `${name}-${hostKeyName(host)}`,
        {
          // `tls: {}` (HTTPS with certificates of the roles' own) is a setting, not "unset".
          ...(args.tls !== undefined ? { tls: args.tls } : {}),
          ...dropUnset({
          hostName: host.name,
          connection: connectionFor(args.ssh, host),
          image: args.image,
          registry: registryInput(args.registry),
          hostPort: args.hostPort,
          apiPort: args.apiPort,
          args: args.args,
          forwardedHeaders: args.forwardedHeaders,
          labels: args.labels,
          options: args.options,
          env: args.env?.clear,
          envFile: envFileRef(envFile),
          networks: args.networks,
          lockService: args.lockService,
          destination: args.destination,
          lockWait: args.lockWait,
          }),
        } as ResourceInputs<TraefikContainerInputs>,
        { parent: this, dependsOn: envFile ? [envFile] : [] },
      );
    }
    this.registerOutputs({});
  }
}

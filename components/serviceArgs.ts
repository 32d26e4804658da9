/**
 * What a Service takes: its arguments, each role's, the health check, proxy route,
 * maintenance, release command and canaries, as Pulumi Inputs over the provider's schema
 * types; and what it returns per container.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { AppContainerInput } from "../provider/config/schemas";
import type { HealthcheckInput, MaintenanceInput, RouteOptionsInput } from "../provider/config/values";
import type { ResourceInputs } from "../provider/resources";
import type { EnvArgs, HostArg, RegistryArgs, SshArgs } from "./common";
import type { Image } from "./image";

/** Health check of a role: the provider's health-check fields, each a Pulumi Input. */
export type HealthcheckArgs = ResourceInputs<HealthcheckInput>;

/** Where and how Traefik serves a role's requests (Kamal 2's `proxy`): its host names
 * (plain), and the route settings of the provider's schema (HTTPS, path prefixes, response
 * timeout, buffering, forwarded headers), each a Pulumi Input. A role's settings apply over
 * the service's, key by key. */
export type ProxyRouteArgs = Partial<ResourceInputs<RouteOptionsInput>> & {
  /** Host name routed to the role, e.g. "app.example.com". */
  readonly host?: string;
  /** Several host names. Without any, the role gets every request its Traefik receives. */
  readonly hosts?: string[];
  /** One path prefix (Kamal 2's path_prefix, "/api" or "/api,/oauth"), over pathPrefixes. */
  readonly pathPrefix?: string;
};

/** Maintenance mode: true for the default page, or a message or page of your own. */
export type MaintenanceArgs = boolean | ResourceInputs<MaintenanceInput>;

/**
 * The container settings a role takes, as the provider's AppContainer schema declares them
 * (provider/config/schemas.ts: type, default, what a change does), and how the role's value
 * combines with the service's: "own" (the role's only), "over" (the role's, else the
 * service's), "merge" (maps: the role's keys over the service's), "append" (lists: the
 * service's, then the role's). A setting added here reaches both args and the resource.
 */
export const ROLE_SETTINGS = {
  cmd: "own",
  options: "own",
  exclusive: "own",
  labels: "merge",
  volumes: "append",
  logging: "over",
  appPort: "over",
  stopWaitTime: "over",
  watch: "over",
  assetPath: "over",
} as const satisfies Partial<Record<keyof AppContainerInput, "own" | "over" | "merge" | "append">>;

type RoleSetting = keyof typeof ROLE_SETTINGS;
/** The settings a service gives every role. */
type ServiceSetting = { [K in RoleSetting]: (typeof ROLE_SETTINGS)[K] extends "own" ? never : K }[RoleSetting];
/** The AppContainer fields as Pulumi Inputs. */
type ContainerArgs = ResourceInputs<AppContainerInput>;

export interface RoleArgs extends Pick<ContainerArgs, RoleSetting> {
  /** Hosts this role runs on. */
  readonly hosts: HostArg[];
  /** Env for this role, merged over the service's. */
  readonly env?: EnvArgs;
  /** Behind Traefik (default: true for the "web" role, false otherwise). */
  readonly traefik?: boolean;
  /** Health check; `false` turns it off for a role not behind Traefik. */
  readonly healthcheck?: HealthcheckArgs | false;
  /** Host names routed to this role, over the service's `proxy`. */
  readonly proxy?: ProxyRouteArgs;
}

/** A release command, run once per new version (and again when the command or the role's
 * env changes) in a one-off container of the new image, on the role's first host, with that
 * role's env, secret env file, volumes and options, before any container is swapped. Its
 * output streams as progress lines; a failure stops the deploy before anything changes. A
 * no-op `up` does not run it. */
export interface ReleaseArgs {
  /** The command, one string (split like a shell would, never interpreted) or argv. */
  readonly cmd: pulumi.Input<string | string[]>;
  /** The role it runs as (default: the primary role). */
  readonly role?: string;
  /** How long it may run, seconds or "10m" (default 600). */
  readonly timeout?: pulumi.Input<number | string>;
}

/** A canary: the new version goes to the first `hosts` hosts of the primary role, is
 * watched there, and only then goes to the rest. A canary that fails its watch is swapped
 * back to the previous version, and no other host ever runs the new one. */
export interface CanaryArgs {
  /** How many hosts of the primary role (its first ones) take the new version first. */
  readonly hosts: number;
  /** Seconds (or "60s") the canaries must stay healthy before the rest follow (default: the
   * service's `watch`, else 60). */
  readonly watch?: pulumi.Input<number | string>;
}

/** A Service's arguments; the container settings it gives every role (ROLE_SETTINGS) are
 * the AppContainer schema's. */
export interface ServiceArgs extends Pick<ContainerArgs, ServiceSetting | "readinessDelay" | "lockWait" | "errorPages" | "runDirectory"> {
  /** Service name: container names and labels start with it. Defaults to the component name. */
  readonly service?: string;
  /** Image without tag, e.g. "registry.example.com/app"; or an Image built in this program,
   * whose version and digest are then deployed (hosts pull exactly that digest). */
  readonly image: pulumi.Input<string> | Image;
  /** The version (image tag) to run. Changing it is a deploy; setting an earlier one, a
   * rollback. Required unless `image` is an Image (its version is the one built). */
  readonly version?: pulumi.Input<string>;
  /** Kamal destination (staging, production…): part of names and labels when set. */
  readonly destination?: string;
  /** Registry credentials; hosts log in before pulling (password through stdin). */
  readonly registry?: pulumi.Input<RegistryArgs>;
  /** How to reach the hosts. */
  readonly ssh: SshArgs;
  /** Roles by name: "web" (behind Traefik by default), "workers"… */
  readonly roles: Record<string, RoleArgs>;
  /** Env for every role. */
  readonly env?: EnvArgs;
  /** Health check defaults for every role. */
  readonly healthcheck?: HealthcheckArgs;
  /** Earlier versions kept stopped per role and host, with their images, so going back
   * needs no registry (default 5, at least 1). Replaced and failed copies do not count. */
  readonly retainContainers?: ContainerArgs["retain"];
  /** Role deployed (healthy, serving) before the other roles start (default "web"). */
  readonly primaryRole?: string;
  /** Hosts per batch within a role: a number or a percentage like "25%" (default: all at once). */
  readonly bootLimit?: number | `${number}%`;
  /** The roles after the primary one on a host boot together (true, the default) or one
   * after another in their order (false: Kamal's boot.parallel_roles default). */
  readonly parallelRoles?: boolean;
  /** Seconds to wait between batches (default 0). */
  readonly bootWait?: ContainerArgs["bootDelay"];
  /** The new version goes to the primary role's first hosts first: see CanaryArgs. */
  readonly canary?: CanaryArgs;
  /** A release command (database migrations): see ReleaseArgs. */
  readonly release?: ReleaseArgs;
  /** When a host fails its swap (or its watch): "stop" (default, as Kamal) keeps the hosts
   * that already switched on the new version and deploys no more; "revert" swaps every host
   * that switched back to the previous version (kept running until the whole rollout has
   * passed, so going back is a route switch: no pull, no failed request), so the fleet is
   * never mixed. With "revert" the hosts take their turns (canaries, boot batches, then the
   * other roles) inside one rollout rather than as dependent resources. */
  readonly onFailure?: "stop" | "revert";
  /** Local commands around each deploy (Kamal's pre-deploy and post-deploy hooks), run on the
   * machine running Pulumi with /bin/sh -c in the program's directory and Kamal's KAMAL_*
   * env: `beforeDeploy` before any host changes (a failure stops the deploy there),
   * `afterDeploy` once every host has switched. Each runs once per deploy: when the version
   * or anything the containers run changes, not on a no-op `up`. */
  readonly hooks?: { readonly beforeDeploy?: pulumi.Input<string>; readonly afterDeploy?: pulumi.Input<string> };
  /** Host names Traefik routes to the roles behind it (Kamal 2's proxy.host/hosts), and how
   * it serves them (ssl, pathPrefix, responseTimeout, buffering, forwardHeaders). Two
   * services or destinations sharing hosts and a Traefik each need their own host names. */
  readonly proxy?: ProxyRouteArgs;
  /** Maintenance mode for every role behind Traefik: Traefik answers their requests with
   * 503 and a page while the containers keep running; false (or unset) is live. Changing it
   * only rewrites the route files: on and off within a second. */
  readonly maintenance?: pulumi.Input<MaintenanceArgs>;
  /** The page maintenance mode shows, whether it comes from `maintenance` or from the
   * operator's `pulumi-kamal maintenance` (Kamal 2's error_pages_path 503.html); `{{ .Message }}`
   * in it is replaced by the message. */
  readonly maintenancePage?: pulumi.Input<string>;
}

/** What runs on one host for one role. */
export interface DeployedContainer {
  version: string;
  containerName: string;
  containerId: string;
  imageDigest: string;
}

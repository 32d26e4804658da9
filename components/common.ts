import * as pulumi from "@pulumi/pulumi";
import { secretFields } from "../provider/config/fields";
import { registry as registrySchema, RUN_DIRECTORY, sshConnection, trimmedRunDirectory, type RegistryInput, type SshBastionInput, type SshConnectionInput } from "../provider/config/values";
import { EnvFileResource, type ResourceInputs } from "../provider/resources";

/** How to reach the hosts over SSH (the provider's connection fields, less the host's own
 * address and key, which come with each host). Host keys are always verified unless you
 * opt out. Keys, passphrases and passwords are stored as Pulumi secrets even when given
 * as plain strings. */
export type SshArgs = ResourceInputs<Omit<SshConnectionInput, "host" | "hostKey" | "proxy">> & {
  /** A bastion (jump host): `{ host, user?, port?, hostKey? }`, same keys as here. */
  readonly proxy?: pulumi.Input<ProxyArgs>;
};

/** A bastion: the same keys as a host. */
export type ProxyArgs = SshBastionInput;

/** A host: its address (a name, IP, or an Output of another resource) and optional key. */
export type HostArg =
  | string
  | {
      /** Stable name used in resource names and outputs (required when address is an Output). */
      readonly name: string;
      readonly address: pulumi.Input<string>;
      /** The host's public key, "ssh-ed25519 AAAA…": pins it without a known_hosts file. */
      readonly hostKey?: pulumi.Input<string>;
      readonly port?: pulumi.Input<number>;
      /** Env for this host only, over the role's (Kamal's host tags). */
      readonly env?: EnvArgs;
    };

export interface ResolvedHost {
  name: string;
  address: pulumi.Input<string>;
  hostKey?: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  env?: EnvArgs;
}

export function resolveHost(h: HostArg): ResolvedHost {
  return typeof h === "string" ? { name: h, address: h } : h;
}

/** A stable piece of a resource name for a host. */
export function hostKeyName(h: ResolvedHost): string {
  return h.name.replace(/[^A-Za-z0-9_.-]/g, "_");
}

const SSH_SECRET_KEYS = secretFields(sshConnection).filter((k) => k !== "proxy");

/** SshArgs with plain values (no Inputs): what the CLI reads from a stack's config. */
export type PlainSshArgs = pulumi.Unwrap<SshArgs>;

/** The connection fields a service's `ssh` gives each of its hosts (the schema's, less the
 * host's own address and key, and the bastion, which inherits). */
const SHARED_SSH_KEYS = Object.keys(sshConnection.shape).filter((k) => k !== "host" && k !== "hostKey" && k !== "proxy") as (keyof PlainSshArgs)[];
/** What a bastion takes from the host's settings unless told otherwise, as OpenSSH's
 * ProxyJump does: the identity and how host keys are verified. */
const BASTION_INHERITS = ["user", "privateKey", "privateKeyPath", "knownHosts", "knownHostsPath", "insecureIgnoreHostKey"] as const;

/** The provider's connection input for one host, from plain values. */
export function connectionInput(ssh: PlainSshArgs, host: { address: string; port?: number; hostKey?: string }): SshConnectionInput {
  const proxy = ssh.proxy ? dropUndefined({ ...pickArgs(ssh, BASTION_INHERITS), ...dropUndefined(ssh.proxy) }) : undefined;
  return dropUndefined({ ...pickArgs(ssh, SHARED_SSH_KEYS), host: host.address, port: host.port ?? ssh.port, hostKey: host.hostKey, proxy }) as SshConnectionInput;
}

/** The provider's connection input for one host: a Pulumi secret as a whole when it
 * carries a key, passphrase or password (the schema says which fields those are). */
export function connectionFor(ssh: SshArgs, host: ResolvedHost): pulumi.Output<SshConnectionInput> {
  const conn = pulumi
    .output({ ssh, address: host.address, port: host.port, hostKey: host.hostKey })
    .apply(({ ssh: plain, address, port, hostKey }) => connectionInput(plain as PlainSshArgs, { address, port, hostKey }));
  return conn.apply((c) => {
    const carriesSecret = (o: Record<string, unknown> | undefined) => !!o && SSH_SECRET_KEYS.some((k) => o[k] !== undefined);
    return carriesSecret(c as Record<string, unknown>) || carriesSecret(c.proxy as Record<string, unknown> | undefined) ? pulumi.secret(c) : c;
  }) as pulumi.Output<SshConnectionInput>;
}

/** Removes undefined fields so that state and diffs only show what was set. */
export function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Removes undefined fields and empty maps and lists: preview shows what the user set. */
export function dropUnset<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => {
      if (v === undefined) return false;
      if (Array.isArray(v)) return v.length > 0;
      if (v && typeof v === "object" && !pulumi.Output.isInstance(v) && Object.getPrototypeOf(v) === Object.prototype) return Object.keys(v).length > 0;
      return true;
    }),
  ) as Partial<T>;
}

/** Registry credentials; hosts `docker login` with the password on stdin. */
export type RegistryArgs = ResourceInputs<RegistryInput>;

const REGISTRY_HOLDS_SECRET = secretFields(registrySchema).length > 0;

/** Registry credentials for a resource: a Pulumi secret, since they carry a password. */
export function registryInput(r: pulumi.Input<RegistryArgs> | undefined): pulumi.Input<RegistryInput> | undefined {
  if (r === undefined) return undefined;
  const out: pulumi.Output<RegistryInput> = pulumi.output(r);
  return REGISTRY_HOLDS_SECRET ? pulumi.secret(out) : out;
}

/** Secret and clear env, as Kamal splits them. */
export interface EnvArgs {
  /** Values visible in `docker inspect` and in state. */
  readonly clear?: Record<string, pulumi.Input<string>>;
  /** Values written to an env file (mode 0600) on the host; encrypted in state. */
  readonly secret?: Record<string, pulumi.Input<string>>;
}

/** The env file holding a component's secret env on one host, or undefined without any.
 * Its content is a Pulumi secret even when the values were given as plain strings. */
export function secretEnvFile(
  parent: pulumi.Resource,
  name: string,
  ssh: SshArgs,
  host: ResolvedHost,
  path: string,
  secret: Record<string, pulumi.Input<string>> | undefined,
): EnvFileResource | undefined {
  if (!secret || Object.keys(secret).length === 0) return undefined;
  return new EnvFileResource(
    name,
    { hostName: host.name, connection: connectionFor(ssh, host), path, env: pulumi.secret(pulumi.output(secret)) },
    { parent },
  );
}

/** How a container resource refers to its env file: path and content hash. */
export function envFileRef(file: EnvFileResource | undefined) {
  return file ? pulumi.output({ path: file.remotePath, hash: file.hash }) : undefined;
}

/** Fails with the component and config path before any resource is registered. */
export function configError(component: string, name: string, path: string, message: string): Error {
  return new Error(`${component} "${name}": ${path}: ${message}`);
}

/** The arguments a component passes to its resource as they are (the fields the resource's
 * schema declares), by name. */
export function pickArgs<T extends object, K extends keyof T>(args: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, args[k]])) as Pick<T, K>;
}

/** A component's run directory (Kamal's `run_directory`, default `.kamal`), where its env
 * files go: a plain string, since it names files on the hosts. */
export function runDirectoryOf(args: { runDirectory?: unknown }): string {
  const d = args.runDirectory ?? RUN_DIRECTORY;
  if (typeof d !== "string") throw new Error("runDirectory must be a plain string (it names files on the hosts), not an Output");
  return trimmedRunDirectory(d);
}

import * as pulumi from "@pulumi/pulumi";
import type { ConnectionInputs, RegistryInputs } from "../provider/resources";

/** How to reach the hosts over SSH. Host keys are always verified unless you opt out. */
export interface SshArgs {
  /** SSH user (default "root"). */
  readonly user?: pulumi.Input<string>;
  /** SSH port (default 22). */
  readonly port?: pulumi.Input<number>;
  /** Private key text; pass it with `pulumi.secret` or `config.requireSecret`. */
  readonly privateKey?: pulumi.Input<string>;
  /** Path to a private key file on the machine running Pulumi. */
  readonly privateKeyPath?: pulumi.Input<string>;
  /** Passphrase of the private key (secret). */
  readonly passphrase?: pulumi.Input<string>;
  /** Password authentication (secret). */
  readonly password?: pulumi.Input<string>;
  /** Use an ssh-agent: a socket path, or true for $SSH_AUTH_SOCK. */
  readonly agent?: pulumi.Input<string | boolean>;
  /** known_hosts text covering the hosts. */
  readonly knownHosts?: pulumi.Input<string>;
  /** Path to a known_hosts file (e.g. ~/.ssh/known_hosts expanded). */
  readonly knownHostsPath?: pulumi.Input<string>;
  /** Accept any host key. Never the default; only for throwaway hosts. */
  readonly insecureIgnoreHostKey?: pulumi.Input<boolean>;
  /** A bastion (jump host): `{ host, user?, port?, hostKey? }`, same keys as here. */
  readonly proxy?: pulumi.Input<ProxyArgs>;
  /** Connect timeout, seconds or "15s" (default 15). */
  readonly connectTimeout?: pulumi.Input<number | string>;
}

export interface ProxyArgs {
  host: string;
  user?: string;
  port?: number;
  privateKey?: string;
  privateKeyPath?: string;
  hostKey?: string;
  knownHosts?: string;
  knownHostsPath?: string;
}

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

/** The provider's connection input for one host. */
export function connectionFor(ssh: SshArgs, host: ResolvedHost): pulumi.Input<ConnectionInputs> {
  // A bastion uses the same identity and known_hosts unless told otherwise, as OpenSSH's
  // ProxyJump does.
  const proxy = ssh.proxy
    ? pulumi.output(ssh.proxy).apply((p) =>
        pulumi.output({
          user: ssh.user,
          privateKey: ssh.privateKey,
          privateKeyPath: ssh.privateKeyPath,
          knownHosts: ssh.knownHosts,
          knownHostsPath: ssh.knownHostsPath,
          insecureIgnoreHostKey: ssh.insecureIgnoreHostKey,
          ...dropUndefined(p),
        }).apply(dropUndefined),
      )
    : undefined;
  return pulumi.output({
    host: host.address,
    port: host.port ?? ssh.port,
    user: ssh.user,
    privateKey: ssh.privateKey,
    privateKeyPath: ssh.privateKeyPath,
    passphrase: ssh.passphrase,
    password: ssh.password,
    agent: ssh.agent,
    knownHosts: ssh.knownHosts,
    knownHostsPath: ssh.knownHostsPath,
    hostKey: host.hostKey,
    insecureIgnoreHostKey: ssh.insecureIgnoreHostKey,
    proxy,
    connectTimeout: ssh.connectTimeout,
  }).apply(dropUndefined) as pulumi.Output<ConnectionInputs>;
}

/** Removes undefined fields so that state and diffs only show what was set. */
export function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Registry credentials; hosts `docker login` with the password on stdin. */
export interface RegistryArgs {
  readonly server: pulumi.Input<string>;
  readonly username: pulumi.Input<string>;
  /** Pass it as a secret (`config.requireSecret`). */
  readonly password: pulumi.Input<string>;
}

/** Deeply resolved registry input for a resource. */
export function registryInput(r: pulumi.Input<RegistryArgs> | undefined): pulumi.Input<RegistryInputs> | undefined {
  return r === undefined ? undefined : (pulumi.output(r) as unknown as pulumi.Output<RegistryInputs>);
}

/** Secret and clear env, as Kamal splits them. */
export interface EnvArgs {
  /** Values visible in `docker inspect` and in state. */
  readonly clear?: Record<string, pulumi.Input<string>>;
  /** Values written to an env file (mode 0600) on the host; encrypted in state. */
  readonly secret?: Record<string, pulumi.Input<string>>;
}

/** Fails with the component and config path before any resource is registered. */
export function configError(component: string, name: string, path: string, message: string): Error {
  return new Error(`${component} "${name}": ${path}: ${message}`);
}

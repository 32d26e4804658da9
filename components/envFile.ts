import * as pulumi from "@pulumi/pulumi";
import { EnvFileResource } from "../provider/resources";
import { connectionFor, resolveHost, type HostArg, type SshArgs } from "./common";

export interface EnvFileArgs {
  readonly host: HostArg;
  readonly ssh: SshArgs;
  /** Path on the host; relative paths are under the SSH user's home. */
  readonly path: pulumi.Input<string>;
  /** Variables; the whole content is a secret. */
  readonly env: Record<string, pulumi.Input<string>>;
}

/** An env file on a host, written over SFTP with mode 0600. `hash` changes when the content
 * does: feed it to whatever must restart on a change. */
export class EnvFile extends pulumi.ComponentResource {
  public readonly hash: pulumi.Output<string>;
  public readonly remotePath: pulumi.Output<string>;

  constructor(name: string, args: EnvFileArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:EnvFile", name, {}, opts);
    const host = resolveHost(args.host);
    const file = new EnvFileResource(name, {
      hostName: host.name,
      connection: connectionFor(args.ssh, host),
      path: args.path,
      env: pulumi.secret(pulumi.output(args.env)),
    }, { parent: this });
    this.hash = file.hash;
    this.remotePath = file.remotePath;
    this.registerOutputs({ hash: this.hash, remotePath: this.remotePath });
  }
}

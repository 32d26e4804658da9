/** Registry login and image presence on a host. */
import * as docker from "../commands/docker";
import { localRegistryPort } from "../commands/build";
import type { SshConnection } from "../ssh/executor";
import { forwardFromRemotePort } from "../ssh/tunnel";
import { progress } from "./common";

const loggedIn = new WeakMap<SshConnection, Set<string>>();

type Registry = { server: string; username: string; password: string };

/** `docker login` with the password on stdin (never on a command line), once per
 * connection, registry and user. */
export async function registryLogin(conn: SshConnection, registry: Registry): Promise<void> {
  const key = `${registry.username}@${registry.server}`;
  const done = loggedIn.get(conn) ?? new Set<string>();
  loggedIn.set(conn, done);
  if (done.has(key)) return;
  await conn.exec(docker.dockerLogin(registry.server, registry.username), {
    stdin: registry.password,
    secrets: [registry.password],
  });
  done.add(key);
}

/**
 * Pulls the image unless the host already has it: going back to a retained version needs no
 * registry at all (not even a login). With a digest, the host pulls exactly that digest and
 * tags it as `ref` (the version), so that what runs is what was built whatever the
 * registry's tag says now; an image already here under that digest is only tagged.
 * A repository on `localhost:PORT` (Kamal 2's local registry, on the deploying machine) is
 * pulled through this host's SSH connection.
 */
export async function ensureImage(conn: SshConnection, ref: string, host: string, registry?: Registry, digest?: string): Promise<{ pulled: boolean }> {
  const repository = /:[^/]*$/.test(ref) ? ref.slice(0, ref.lastIndexOf(":")) : ref;
  const pinned = digest ? `${repository}@${digest}` : undefined;
  if (pinned) {
    const [have, tagged] = await Promise.all([conn.run(docker.imageId(pinned)), conn.run(docker.imageId(ref))]);
    if (have.code === 0) {
      if (tagged.code !== 0 || tagged.stdout.trim() !== have.stdout.trim()) await conn.exec(docker.tagImage(pinned, ref));
      progress(host, `${ref} (${digest!.slice(0, 19)}) is already on the host (no pull)`);
      return { pulled: false };
    }
  } else if ((await conn.run(docker.imageId(ref))).code === 0) {
    progress(host, `${ref} is already on the host (no pull)`);
    return { pulled: false };
  }
  const port = localRegistryPort(repository);
  if (registry && port === undefined) await registryLogin(conn, registry);
  progress(host, `pulling ${pinned ?? ref}${port !== undefined ? " from the local registry (through SSH)" : ""}`);
  if (port === undefined) {
    await conn.exec(docker.pullImage(pinned ?? ref));
  } else {
    // The port is forwarded over the connection the pull runs on: when the connection drops
    // and the pull is run again on a new one, the forwarding is made again for it.
    for (let attempt = 1; ; attempt++) {
      const tunnel = await forwardFromRemotePort(conn, port);
      try {
        await conn.exec(docker.pullImage(pinned ?? ref));
        break;
      } catch (e) {
        if (attempt >= 2) throw e;
        progress(host, `the pull from the local registry failed (${(e as Error).message.split("\n")[0]}); forwarding the port again and pulling once more`);
      } finally {
        await tunnel.close();
      }
    }
  }
  if (pinned) await conn.exec(docker.tagImage(pinned, ref));
  return { pulled: true };
}

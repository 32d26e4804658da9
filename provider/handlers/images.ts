/** Registry login and image presence on a host. */
import * as docker from "../commands/docker";
import type { SshConnection } from "../ssh/executor";
import { progress } from "./common";

const loggedIn = new WeakMap<SshConnection, Set<string>>();

/** `docker login` with the password on stdin (never on a command line), once per
 * connection, registry and user. */
export async function registryLogin(
  conn: SshConnection,
  registry: { server: string; username: string; password: string },
): Promise<void> {
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

/** Pulls the image unless the host already has it: going back to a retained version
 * needs no registry at all (not even a login). */
export async function ensureImage(
  conn: SshConnection,
  ref: string,
  host: string,
  registry?: { server: string; username: string; password: string },
): Promise<{ pulled: boolean }> {
  if ((await conn.run(docker.imageId(ref))).code === 0) {
    progress(host, `${ref} is already on the host (no pull)`);
    return { pulled: false };
  }
  if (registry) await registryLogin(conn, registry);
  progress(host, `pulling ${ref}`);
  await conn.exec(docker.pullImage(ref));
  return { pulled: true };
}

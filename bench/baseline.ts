/** What the swap is measured against: a naive deploy (stop, then start) and the raw swap floor over plain SSH. */
import { createTraefik, traefikDirs } from "../provider/commands/traefik";
import { traefikContainer } from "../provider/config/schemas";
import { shellJoin } from "../provider/commands/shell";
import * as docker from "../provider/commands/docker";
import type { SshConnection } from "../provider/ssh/executor";
import { host, sandbox, onHost, target } from "../testbed/sandbox";
import { pool, sleep } from "./context";


/** What a plain remote command (or a delete-before-replace container resource) does:
 * remove the old container, run the new one. Same labels and health check as ours. */
export async function naiveDeploy(hosts: string[], version: string, token: string): Promise<void> {
  await Promise.all(
    hosts.map(async (h) => {
      const conn = await pool.connect(target(h));
      const labels = [
        "traefik.enable=true",
        "traefik.http.routers.naive-web.rule=PathPrefix(`/`)",
        "traefik.http.routers.naive-web.entrypoints=http",
        "traefik.http.services.naive-web.loadbalancer.server.port=80",
      ].flatMap((l) => ["--label", l]);
      await conn.exec(
        onHost(`docker rm -f naive-web >/dev/null 2>&1; ${shellJoin([
          "docker", "run", "--detach", "--name", "naive-web", "--env", `TOKEN=${token}`, ...labels,
          "--health-cmd", "/app probe http://127.0.0.1/up", "--health-interval", "1s",
          `${sandbox().images.app.v1.replace(/:v1$/, "")}:${version}`,
        ])}`),
      );
    }),
  );
  // A plain command returns at once; the outage lasts until the new container is healthy.
  await Promise.all(hosts.map(async (h) => waitHealthy(await pool.connect(target(h)), "naive-web", 15_000)));
}

export async function waitHealthy(conn: SshConnection, name: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const [, health] = (await conn.run(docker.containerState(name))).stdout.trim().split(" ");
    if (health === "healthy") return true;
    await sleep(100);
  }
  return false;
}

export async function startTraefikDirect(hosts: string[]) {
  for (const h of hosts) {
    const conn = await pool.connect(target(h));
    await login(conn);
    const cfg = traefikContainer.parse({ hostName: h, connection: { host: host(h).address }, image: sandbox().images.traefik });
    await conn.exec(docker.makeDirectories(["/root/.kamal/proxy/traefik"]));
    await conn.exec(createTraefik(cfg, { name: "traefik", dirs: traefikDirs("/root") }));
    await conn.exec(docker.startContainer("traefik"));
  }
}

export async function login(conn: SshConnection) {
  const r = sandbox().registry;
  await conn.exec(docker.dockerLogin(r.address, r.username), { stdin: r.password, secrets: [r.password] });
}

// ------------------------------------------------------------------------- floor
/** The raw Docker sequence of one swap on one host over one SSH connection: start new, wait
 * healthy, make old unhealthy (cut its cord), stop old. */
export async function floorSwap(conn: SshConnection, from: string, to: string, image: string): Promise<number> {
  const cord = (v: string) => `/root/.kamal/floor-cords/${v}`;
  const t0 = performance.now();
  await conn.exec(docker.tieCord(cord(to)));
  await conn.exec(
    onHost(shellJoin([
      "docker", "run", "--detach", "--name", `floor-${to}`, "--volume", `${cord(to)}:/tmp/kamal-cord`,
      "--label", "traefik.enable=true", "--label", "traefik.http.routers.floor.rule=PathPrefix(`/`)",
      "--label", "traefik.http.services.floor.loadbalancer.server.port=80",
      "--health-cmd", "(/app probe http://127.0.0.1/up) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)",
      "--health-interval", "1s", "--health-retries", "3", image,
    ])),
  );
  await waitHealthy(conn, `floor-${to}`, 30_000);
  await conn.exec(docker.cutCord(cord(from)));
  for (;;) {
    const [, health] = (await conn.run(docker.containerState(`floor-${from}`))).stdout.trim().split(" ");
    if (health === "unhealthy") break;
    await sleep(100);
  }
  await conn.exec(docker.stopContainer(`floor-${from}`, 10));
  const ms = performance.now() - t0;
  await conn.exec(docker.removeContainers([`floor-${from}`]));
  return ms;
}

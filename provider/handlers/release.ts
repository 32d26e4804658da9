/**
 * The release command of a service (migrations): run once per version, before any container
 * is swapped, in a one-off container of the new image on one host. Its update is the run;
 * the resource's state records the version it ran for, so a no-op `up` runs nothing and a
 * failed run leaves the state (and every container, which depends on it) as it was.
 *
 * The container runs detached and is followed by its logs: a dropped connection does not
 * stop it, and the next attempt finds it by name and waits for it before running again.
 */
import { readFile } from "../commands/files";
import { release, type ReleaseConfig } from "../config/schemas";
import { parseInputs } from "../config/fields";
import * as docker from "../commands/docker";
import { releaseContainerName, runRelease } from "../commands/release";
import { shellJoin } from "../commands/shell";
import { kamalTime } from "../commands/audit";
import { DeadlineError } from "../ssh/errors";
import { audit, absolute, changeOnce, connect, diffResource, mustAct, progress, remoteHome, rootCause, Secrets, step, StepError, validate } from "./common";
import { ensureImage } from "./images";
import { withLock } from "./lock";

import type { Inputs } from "./handlers";

const PATHS: Record<string, string> = { connection: "ssh", hostName: "release.role", registry: "registry", image: "image", digest: "image", version: "version", service: "service", destination: "destination" };
const pathOf = (key: string) => PATHS[key] ?? `release.${key}`;

/** Lines of output kept for the error of a failed run. */
const TAIL_LINES = 20;

export function check(_olds: Inputs, news: Inputs) {
  return { inputs: news, failures: validate(release, news, pathOf).failures };
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  return diffResource(release, olds, news);
}

export async function create(news: Inputs) {
  const cfg = parseInputs(release, news);
  return { id: `${cfg.service}${cfg.destination ? `-${cfg.destination}` : ""}/release`, outs: { ...news, ...(await run(cfg)) } };
}

export async function update(_id: string, olds: Inputs, news: Inputs) {
  const cfg = parseInputs(release, news);
  if (!mustAct(release, olds, news)) return { outs: { ...news, ranVersion: olds.ranVersion, ranAt: olds.ranAt, ranOn: olds.ranOn } };
  return { outs: { ...news, ...(await run(cfg)) } };
}

/** Nothing on a host belongs to a release once it has run. */
export async function read(id: string, props: Inputs) {
  return { id, props };
}

export async function remove(): Promise<void> {}

async function run(cfg: ReleaseConfig): Promise<{ ranVersion: string; ranAt: string; ranOn: string }> {
  const secrets = new Secrets(release, cfg);
  return secrets.guard(async () => {
    const host = cfg.hostName;
    const conn = await step(host, "connecting", () => connect(cfg.connection));
    const image = `${cfg.image}:${cfg.version}`;
    const name = releaseContainerName(cfg);
    const lock = { host, service: cfg.service, destination: cfg.destination, version: cfg.version, waitSeconds: cfg.lockWait, runDirectory: cfg.runDirectory };
    return withLock(conn, lock, async ([, home]) => {
      const envFile = cfg.envFile ? absolute(home, cfg.envFile.path) : undefined;
      // The env file's values are secrets of the run: a command that prints one shows
      // [REDACTED] in the progress lines and the error.
      if (envFile) secrets.addEnvFile((await step(host, "reading the role's env file", () => conn.exec(readFile(envFile)))).stdout);
      // An earlier attempt cut short may still be running: it finishes before this one starts.
      const earlier = (await conn.run(docker.containerState(name))).stdout.trim().split(" ")[0];
      if (earlier === "running") {
        progress(host, `release: ${name} from an earlier attempt is still running; waiting for it to finish first`);
        await step(host, `waiting for the earlier ${name}`, () => conn.exec(docker.waitContainer(name), { timeoutMs: cfg.timeout * 1000 }));
      }
      if (earlier) await conn.run(docker.removeContainers([name], true));

      const started = Date.now();
      progress(host, `release: running ${shellJoin(typeof cfg.cmd === "string" ? [cfg.cmd] : cfg.cmd)} in ${name} (${image}), before any container is swapped`);
      await step(host, `starting the release command in ${name}`, () =>
        changeOnce(conn, runRelease(cfg, { name, envFile }), async () => (await conn.run(docker.containerState(name))).code === 0),
      );
      const tail: string[] = [];
      const deadline = started + cfg.timeout * 1000;
      try {
        await conn.run(docker.followLogs(name), {
          timeoutMs: cfg.timeout * 1000,
          onLine: (_stream, line) => {
            const shown = secrets.redact(line);
            tail.push(shown);
            if (tail.length > TAIL_LINES) tail.shift();
            progress(host, `release: ${shown}`);
          },
        });
      } catch (e) {
        if (!(rootCause(e) instanceof DeadlineError)) throw e;
      }
      const waited = await step(host, `waiting for ${name} to exit`, () =>
        conn.run(docker.waitContainer(name), { timeoutMs: Math.max(1000, deadline - Date.now()) }).catch((e) => {
          if (rootCause(e) instanceof DeadlineError) return undefined;
          throw e;
        }),
      );
      const took = `${((Date.now() - started) / 1000).toFixed(1)}s`;
      const output = tail.length ? `\n--- last output of ${name} ---\n${tail.join("\n")}` : "";
      if (!waited) {
        await conn.run(docker.removeContainers([name], true));
        throw new StepError(host, "running the release command", new Error("timeout"), `it did not finish within ${cfg.timeout}s and was stopped; no container was swapped${output}`);
      }
      const code = Number(waited.stdout.trim());
      // Kept when it failed, for its logs (removed by the next attempt); removed when done.
      if (code === 0) await conn.run(docker.removeContainers([name], true));
      await audit(conn, host, { service: cfg.service, destination: cfg.destination, role: cfg.role, runDirectory: cfg.runDirectory }, `Ran the release command for version ${cfg.version}: ${code === 0 ? "done" : `exit ${code}`} in ${took}`);
      if (code !== 0) {
        throw new StepError(host, "running the release command", new Error(`exit ${code}`), `it exited with code ${code} after ${took}; no container was swapped (the container ${name} is kept for its logs)${output}`);
      }
      progress(host, `release: done for ${cfg.version} (${took})`);
      return { ranVersion: cfg.version, ranAt: kamalTime(), ranOn: host };
    }, () => Promise.all([step(host, `pulling ${image}`, () => ensureImage(conn, image, host, cfg.registry, cfg.digest)), step(host, "reading the home directory", () => remoteHome(conn))]));
  });
}

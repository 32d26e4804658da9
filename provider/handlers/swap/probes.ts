/**
 * The swap's probes: whether a container is ready to take traffic (probed directly, or by
 * Docker's health schedule), whether it stays healthy through the watch window, and when a
 * container whose cord was cut has left rotation. Time the host could not be reached never
 * counts against a container.
 */
import type { AppContainerConfig } from "../../config/schemas";
import * as docker from "../../commands/docker";
import type { SshConnection } from "../../ssh/executor";
import { progress, sleep } from "../common";

/** "running", "exited", "created"… of a container, or undefined when there is none. */
export async function containerStatus(conn: SshConnection, name: string): Promise<string | undefined> {
  const r = await conn.run(docker.containerState(name));
  return r.code === 0 ? r.stdout.trim().split(" ")[0] : undefined;
}

export async function exists(conn: SshConnection, name: string): Promise<boolean> {
  return (await containerStatus(conn, name)) !== undefined;
}

/**
 * Ready to take traffic, probed directly and at once rather than on Docker's health
 * schedule: the HTTP health path on the container's address (through the SSH connection),
 * or the health command run in the container. Fails at once if the container exits or
 * restarts, and at the deadline.
 */
/** What waitReady probes with: a health check's probe settings (an app's, or an accessory's route). */
type ReadyCheck = Pick<NonNullable<AppContainerConfig["healthcheck"]>, "path" | "port" | "cmd" | "interval" | "timeout" | "retries" | "deadline">;

export async function waitReady(conn: SshConnection, cfg: { hostName: string; healthcheck?: ReadyCheck }, name: string): Promise<void> {
  const hc = cfg.healthcheck!;
  const deadline = hc.deadline * 1000;
  // Time the host could not be reached does not count against the container.
  const since = conn.stopwatch();
  let ip: string | undefined;
  let lastReport = 0;
  let forwarding = true;
  let last = "";
  for (let attempt = 1; ; attempt++) {
    const r = await conn.run(docker.containerState(name));
    const [status, health, restarts] = r.stdout.trim().split(" ");
    if (r.code !== 0) throw new Error(`container ${name} disappeared while booting`);
    if (status !== "running" || Number(restarts) > 0) {
      throw new Error(`container ${name} ${status === "running" ? "restarted" : status} while booting${healthNote(health, last)}`);
    }
    if (health === "healthy") return;
    // A probe never outlasts the deadline: a hanging app fails at it, not a timeout later.
    const timeout = Math.max(200, Math.min(hc.timeout * 1000, deadline - since()));
    if (hc.cmd) {
      const probe = await conn.run(docker.execInContainer(name, hc.cmd));
      if (probe.code === 0) return;
      last = `${hc.cmd} exited ${probe.code}${quoted(probe.stdout + probe.stderr)}`;
    } else if (forwarding) {
      ip ??= (await conn.exec(docker.containerIp(name))).stdout.trim().split(" ")[0];
      try {
        const answer = await conn.httpGet(ip, hc.port, hc.path, timeout);
        if (answer.status >= 200 && answer.status < 300) return;
        last = `GET ${hc.path} answered HTTP ${answer.status}${quoted(answer.body)}`;
      } catch (e) {
        last = (e as Error).message.split("\n")[0].slice(0, 160);
        // A server that refuses forwarding: Docker's own health schedule decides instead,
        // when the container has one.
        if (/prohibited|open failed/i.test((e as Error).message)) {
          forwarding = false;
          if (health === "-") {
            throw new Error(`the SSH server refuses port forwarding, which probing ${hc.path} on ${name} from outside the container needs: allow it (AllowTcpForwarding) or give the health check a cmd`);
          }
        }
      }
    }
    const elapsed = since();
    if (elapsed > deadline) throw new Error(`container ${name} did not become healthy within ${hc.deadline}s${healthNote(health, last)}`);
    if (elapsed - lastReport >= 3000) {
      lastReport = elapsed;
      progress(cfg.hostName, `waiting for ${name} to be healthy (attempt ${attempt}, ${Math.round(elapsed / 1000)}s of ${hc.deadline}s)`);
    }
    await sleep(100);
  }
}

/** What is known of a failed health check: Docker's verdict when Docker runs one, and the
 * last probe's own answer (its status and the first line it said). */
function healthNote(health: string, last = ""): string {
  const parts = [...(health && health !== "-" ? [`health ${health}`] : []), ...(last ? [`last probe: ${last}`] : [])];
  return parts.length ? ` (${parts.join("; ")})` : "";
}

/** The first line a probe printed, quoted and cut short, or nothing. */
function quoted(output: string): string {
  const line = output.trim().split("\n")[0]?.trim() ?? "";
  return line ? `: "${line.length > 160 ? `${line.slice(0, 160)}…` : line}"` : "";
}

/**
 * The watch window after the switch: the container must keep running, without a restart,
 * and keep passing its health check (Docker's, or the HTTP path probed as at boot: `retries`
 * failures in a row fail it) for `watch` seconds. Time the host could not be reached does
 * not count.
 */
export async function watchServing(conn: SshConnection, cfg: AppContainerConfig, name: string, byRoutes: boolean, old: string[]): Promise<void> {
  const hc = cfg.healthcheck;
  const window = cfg.watch * 1000;
  const since = conn.stopwatch();
  const probeHttp = byRoutes && hc && !hc.cmd;
  const every = Math.min(1000, Math.max(250, (hc?.interval ?? 1) * 1000));
  const at = () => `${(since() / 1000).toFixed(1)}s after it took traffic`;
  progress(cfg.hostName, `watching ${name} for ${cfg.watch}s: it must stay healthy without a restart${old.length ? `; ${old.join(", ")} kept running${byRoutes ? " out of rotation" : ""} meanwhile` : ""}`);
  let ip: string | undefined;
  let failures = 0;
  let lastAnswer = "";
  let lastReport = 0;
  for (;;) {
    const r = await conn.run(docker.containerState(name));
    const [status, health, restarts] = r.stdout.trim().split(" ");
    if (r.code !== 0) throw new Error(`container ${name} disappeared ${at()}`);
    if (status !== "running" || Number(restarts) > 0) {
      throw new Error(`container ${name} ${status === "running" ? "restarted" : status} ${at()}, inside its ${cfg.watch}s watch`);
    }
    if (health === "unhealthy") throw new Error(`container ${name} turned unhealthy ${at()}, inside its ${cfg.watch}s watch`);
    if (probeHttp) {
      ip ??= (await conn.exec(docker.containerIp(name))).stdout.trim().split(" ")[0];
      try {
        const answer = await conn.httpGet(ip, hc.port, hc.path, hc.timeout * 1000);
        const ok = answer.status >= 200 && answer.status < 300;
        failures = ok ? 0 : failures + 1;
        lastAnswer = `HTTP ${answer.status}`;
      } catch (e) {
        failures++;
        lastAnswer = (e as Error).message;
      }
      if (failures >= hc.retries) {
        throw new Error(`container ${name} failed its health check (${hc.path}) ${failures} times in a row ${at()}, inside its ${cfg.watch}s watch (last: ${lastAnswer})`);
      }
    }
    const elapsed = since();
    if (elapsed >= window) {
      progress(cfg.hostName, `${name} stayed healthy for its ${cfg.watch}s watch`);
      return;
    }
    if (elapsed - lastReport >= 5000) {
      lastReport = elapsed;
      progress(cfg.hostName, `watching ${name}: healthy for ${Math.round(elapsed / 1000)}s of ${cfg.watch}s`);
    }
    await sleep(every);
  }
}

/** Polls Docker until the container is healthy (or, without a health check, has stayed
 * up for `readinessDelay` seconds). Fails at once if it exits or restarts. */
export async function waitHealthy(conn: SshConnection, cfg: AppContainerConfig, name: string): Promise<void> {
  const deadline = (cfg.healthcheck?.deadline ?? cfg.readinessDelay + 10) * 1000;
  // Time the host could not be reached does not count against the container.
  const since = conn.stopwatch();
  let attempt = 0;
  let lastReport = 0;
  for (;;) {
    attempt++;
    const r = await conn.run(docker.containerState(name));
    const [status, health, restarts] = r.stdout.trim().split(" ");
    const elapsed = since();
    if (r.code !== 0) throw new Error(`container ${name} disappeared while booting`);
    if (status !== "running" || Number(restarts) > 0) {
      throw new Error(`container ${name} ${status === "running" ? "restarted" : status} while booting${healthNote(health)}`);
    }
    if (cfg.healthcheck ? health === "healthy" : elapsed >= cfg.readinessDelay * 1000) return;
    if (elapsed > deadline) {
      throw new Error(`container ${name} did not become healthy within ${cfg.healthcheck?.deadline}s${healthNote(health)}`);
    }
    if (elapsed - lastReport >= 3000) {
      lastReport = elapsed;
      progress(cfg.hostName, `waiting for ${name} to be healthy (attempt ${attempt}, ${Math.round(elapsed / 1000)}s of ${deadline / 1000}s, health ${health})`);
    }
    await sleep(100);
  }
}

export async function waitUnhealthy(conn: SshConnection, cfg: AppContainerConfig, name: string) {
  const hc = cfg.healthcheck ?? { interval: 1, retries: 3 };
  const deadline = Date.now() + (hc.interval * (hc.retries + 2) + 10) * 1000;
  while (Date.now() < deadline) {
    const [status, health] = (await conn.run(docker.containerState(name))).stdout.trim().split(" ");
    if (status !== "running" || health === "unhealthy" || health === "-") return;
    await sleep(150);
  }
  progress(cfg.hostName, `${name} did not turn unhealthy in time; stopping it anyway`);
}


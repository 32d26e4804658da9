/** Load while a phase runs: keep-alive and new-connection requests to each web host (HTTP or HTTPS), and what failed. */
import { startLoad, type Load, type LoadResult } from "../testbed/load";
import { host } from "../testbed/sandbox";
import { RATE, sleep } from "./context";


export interface PhaseLoad {
  keepAlive: LoadResult;
  newConnections: LoadResult;
}

/** Load on each host: plain HTTP, or HTTPS to a host name with a CA to trust. */
/** HTTPS load per host and kind: a new TLS connection costs this process far more CPU than a
 * plain one, and at RATE the generator itself falls behind on two cores. */
export const HTTPS_RATE = 50;

export function loadOn(hosts: string[], tls?: { ca: string; servername: string }): { stop: () => Promise<PhaseLoad> } {
  const url = (h: string) => `${tls ? "https" : "http"}://${host(h).address}/version`;
  const extra = tls ? { tls, headers: { host: tls.servername } } : {};
  const rate = tls ? HTTPS_RATE : RATE;
  const ka: Load[] = hosts.map((h) => startLoad({ url: url(h), rate, connections: 8, ...extra }));
  const nc: Load[] = hosts.map((h) => startLoad({ url: url(h), rate, newConnections: true, ...extra }));
  const merge = (rs: LoadResult[]): LoadResult => ({
    total: rs.reduce((n, r) => n + r.total, 0),
    ok: rs.reduce((n, r) => n + r.ok, 0),
    non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
    errors: rs.reduce((n, r) => n + r.errors, 0),
    retried: rs.reduce((n, r) => n + r.retried, 0),
    failedBy: rs.reduce<Record<string, number>>((by, r) => {
      for (const [k, n] of Object.entries(r.failedBy)) by[k] = (by[k] ?? 0) + n;
      return by;
    }, {}),
    timeouts: rs.reduce((n, r) => n + r.timeouts, 0),
    p50: Math.max(...rs.map((r) => r.p50)),
    p99: Math.max(...rs.map((r) => r.p99)),
    samples: rs.flatMap((r) => r.samples).slice(0, 5),
    skipped: rs.reduce((n, r) => n + r.skipped, 0),
  });
  return {
    stop: async () => ({ keepAlive: merge(await Promise.all(ka.map((l) => l.stop()))), newConnections: merge(await Promise.all(nc.map((l) => l.stop()))) }),
  };
}

export async function underLoad(hosts: string[], action: () => Promise<unknown>, tls?: { ca: string; servername: string }): Promise<PhaseLoad> {
  const load = loadOn(hosts, tls);
  await sleep(1000);
  await action();
  await sleep(1500);
  return load.stop();
}


export function failedOf(l: PhaseLoad): number {
  return [l.keepAlive, l.newConnections].reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
}

/** The markdown table, each figure beside its goal. */

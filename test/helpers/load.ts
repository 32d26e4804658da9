/** Constant HTTP load for zero-downtime checks, counted the way the tests need it. */
import autocannon from "autocannon";

export interface LoadResult {
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p50: number;
  p99: number;
}

export interface LoadOptions {
  url: string;
  /** Request rate across all connections. */
  rate?: number;
  connections?: number;
  /** A fresh TCP connection for every request instead of keep-alive. */
  newConnections?: boolean;
  headers?: Record<string, string>;
}

/** Starts load now; `stop()` ends it and resolves the counts. */
export function startLoad(opts: LoadOptions): { stop: () => Promise<LoadResult> } {
  const instance = autocannon({
    url: opts.url,
    connections: opts.connections ?? 4,
    overallRate: opts.rate ?? 200,
    duration: 3600,
    timeout: 10,
    headers: { ...(opts.headers ?? {}), ...(opts.newConnections ? { connection: "close" } : {}) },
  });
  const done = new Promise<LoadResult>((resolve, reject) => {
    instance.on("done", (r: autocannon.Result) =>
      resolve({
        total: r.requests.total + r.errors,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        p50: r.latency.p50,
        p99: r.latency.p99,
      }),
    );
    instance.on("error", reject);
  });
  return {
    stop: async () => {
      instance.stop();
      return done;
    },
  };
}

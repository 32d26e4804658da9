/**
 * Constant HTTP load for zero-downtime checks and benchmarks: an open-loop generator that
 * starts requests at a fixed rate whatever the server does (a slow or failing server does
 * not slow the load down), over keep-alive connections or a fresh TCP connection per
 * request. Counts every request: 2xx, non-2xx, socket errors, timeouts.
 */
import http from "node:http";
import https from "node:https";

export interface LoadResult {
  /** Requests started (each ends as 2xx, non-2xx, error or timeout). */
  total: number;
  ok: number;
  non2xx: number;
  /** Socket errors: refused, reset, closed before a response. */
  errors: number;
  timeouts: number;
  /** Latency percentiles of answered requests, milliseconds. */
  p50: number;
  p99: number;
  /** First few failures, for diagnosis. */
  samples: string[];
  /** Slots not sent because this process fell behind (a starved client must not fire a
   * burst that overflows the server's accept queue and counts as server failures). */
  skipped: number;
  /** Requests sent again after a reused connection closed under them (retryOnStaleConnection). */
  retried: number;
  /** Failed requests by who failed them: the app version that answered (its X-Testapp-Version
   * header), else "proxy HTTP <status>", "error" or "timeout". */
  failedBy: Record<string, number>;
}

export interface LoadOptions {
  url: string;
  /** Requests per second. */
  rate?: number;
  /** Keep-alive connections in the pool (ignored with newConnections). */
  connections?: number;
  /** A fresh TCP connection for every request instead of keep-alive. */
  newConnections?: boolean;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Behave as browsers, curl, Go's and Python's HTTP clients do (RFC 9112 §9.3.1): a GET
   * sent on a reused keep-alive connection that the server closed before answering is sent
   * once more, on a new connection. Counted in `retried`; off by default. */
  retryOnStaleConnection?: boolean;
  /** For an https URL: the CA to trust (only it) and the name to ask for (SNI, certificate). */
  tls?: { ca: string; servername: string };
}

export interface Load {
  stop(): Promise<LoadResult>;
}

/** Sockets that carried a request: the next request on one rides a reused keep-alive connection. */
const carried = new WeakSet<object>();

export function startLoad(opts: LoadOptions): Load {
  const rate = opts.rate ?? 200;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const secure = opts.url.startsWith("https:");
  const client = secure ? https : http;
  const tlsOptions = secure && opts.tls ? { ca: opts.tls.ca, servername: opts.tls.servername } : {};
  const agent = opts.newConnections
    ? undefined
    : secure
      ? new https.Agent({ keepAlive: true, maxSockets: opts.connections ?? 4, ...tlsOptions })
      : new http.Agent({ keepAlive: true, maxSockets: opts.connections ?? 4 });
  const result: LoadResult = { total: 0, ok: 0, non2xx: 0, errors: 0, timeouts: 0, p50: 0, p99: 0, samples: [], skipped: 0, retried: 0, failedBy: {} };
  const latencies: number[] = [];
  const inflight = new Set<Promise<void>>();
  const note = (what: string) => {
    if (result.samples.length < 10) result.samples.push(what);
  };

  const fire = () => {
    result.total++;
    const started = performance.now();
    const p = new Promise<void>((resolve) => {
      let settled = false;
      const settle = (outcome: "ok" | "non2xx" | "errors" | "timeouts", detail?: string, by?: string) => {
        if (settled) return;
        settled = true;
        result[outcome]++;
        if (outcome !== "ok") {
          const who = by ?? (outcome === "errors" ? "error" : outcome === "timeouts" ? "timeout" : "unknown");
          result.failedBy[who] = (result.failedBy[who] ?? 0) + 1;
        }
        if (detail) note(detail);
        resolve();
      };
      const send = (retry: boolean) => {
        let answered = false;
        let reused = false;
        const req = client.get(opts.url, { agent: retry ? false : (agent ?? false), headers: opts.headers, timeout: timeoutMs, ...tlsOptions }, (res) => {
          answered = true;
          res.resume();
          res.on("end", () => {
            latencies.push(performance.now() - started);
            const status = res.statusCode ?? 0;
            const version = res.headers["x-testapp-version"];
            if (status >= 200 && status < 300) settle("ok");
            else settle("non2xx", `HTTP ${status}`, typeof version === "string" ? version : `proxy HTTP ${status}`);
          });
          res.on("error", (e) => settle("errors", e.message));
        });
        // A socket that carried an earlier request is a reused keep-alive connection.
        req.on("socket", (s) => {
          reused = carried.has(s);
          carried.add(s);
        });
        req.on("timeout", () => {
          settle("timeouts", "timeout");
          req.destroy();
        });
        req.on("error", (e) => {
          if (opts.retryOnStaleConnection && !retry && reused && !answered && /socket hang up|ECONNRESET|EPIPE/.test(e.message)) {
            result.retried++;
            send(true);
          } else settle("errors", e.message);
        });
      };
      send(false);
    });
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  };

  // Fire on a fixed schedule, catching up at most 100ms of lateness.
  const t0 = performance.now();
  let fired = 0;
  const maxBurst = Math.max(1, Math.ceil(rate / 10));
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    if (due - fired > maxBurst) {
      result.skipped += due - fired - maxBurst;
      fired = due - maxBurst;
    }
    while (fired < due) {
      fired++;
      fire();
    }
  }, 5);

  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([...inflight]);
      agent?.destroy();
      latencies.sort((a, b) => a - b);
      const pct = (q: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]) : 0);
      result.p50 = pct(0.5);
      result.p99 = pct(0.99);
      return result;
    },
  };
}

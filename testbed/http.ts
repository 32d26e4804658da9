import http from "node:http";
import https from "node:https";
import type tls from "node:tls";

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface RequestOptions {
  /** The Host header (Traefik routes by it); for https, also the name asked for (SNI). */
  host?: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
  method?: string;
  body?: string | Buffer;
  /** For https: the only CA trusted. */
  ca?: string;
}

export interface HttpsAnswer extends HttpAnswer {
  headers: http.IncomingHttpHeaders;
  /** The serial number of the certificate the server presented (https). */
  certificateSerial?: string;
  certificateSubject?: string;
}

/** One request on a fresh connection (http or https), optionally with a Host header. */
export function request(url: string, opts: RequestOptions = {}): Promise<HttpsAnswer> {
  const secure = url.startsWith("https:");
  const client = secure ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: opts.method ?? "GET",
        headers: { ...(opts.host ? { host: opts.host } : {}), ...(opts.headers ?? {}) },
        agent: false,
        timeout: opts.timeoutMs ?? 5000,
        ...(secure ? { ca: opts.ca, servername: opts.host } : {}),
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          const cert = secure ? (res.socket as tls.TLSSocket).getPeerCertificate?.() : undefined;
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, certificateSerial: cert?.serialNumber, certificateSubject: [cert?.subject?.CN].flat()[0] });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${opts.method ?? "GET"} ${url} timed out`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** One HTTP GET on a fresh connection, optionally with a Host header (Traefik routing). */
export function httpGet(url: string, opts: { host?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  return request(url, opts).then(({ status, body }) => ({ status, body }));
}

/** Polls until `check` returns a value, or fails after `timeoutMs` with the last error. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * The proxy capabilities' pure layers: route files with HTTPS, path prefixes, timeouts,
 * buffering, forwarded headers and maintenance (whole JSON); Traefik's HTTPS entrypoint,
 * ACME resolver and trusted headers (whole argument lists); what a running Traefik can do,
 * read back from its arguments; the maintenance page; config errors as exact messages.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { routeOnlySettings, routeFileSpec } from "../../../provider/commands/app";
import { PLUGIN_MODULE, traefikPluginFiles } from "../../../provider/commands/traefikPlugin";
import { DEFAULT_MAINTENANCE_PAGE, fullRule, maintenancePage, routeConfig, routeRouters, routeRules, ruleHosts, tlsConfig, tlsFile, writtenServers } from "../../../provider/commands/proxy";
import { ensureAcmeStore, traefikArgs, traefikCapabilities, traefikDirs, traefikPublish, trafficPorts, trialTraefik, createTraefik } from "../../../provider/commands/traefik";
import { parseInputs } from "../../../provider/config/fields";
import { appContainer, traefikContainer } from "../../../provider/config/schemas";
import { bytes } from "../../../provider/config/values";

const connection = { host: "10.0.0.1" };
const PLUGIN_ARG = `--experimental.localplugins.kamal.modulename=${PLUGIN_MODULE}`;
const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

const web = (over: Record<string, unknown> = {}) =>
  appContainer.parse({ hostName: "web-1", connection, service: "shop", role: "web", image: "shop", version: "v1", traefik: true, healthcheck: {}, routeHosts: ["shop.example.com"], ...over });

const ours = traefikCapabilities(traefikArgs(traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", tls: { acme: {} } })));

describe("a route file", () => {
  it("serves HTTPS beside HTTP: the plain router redirects, the TLS one gets its certificate from the resolver", () => {
    const config = JSON.parse(
      routeConfig({ name: "shop-web", rule: "Host(`shop.example.com`)", servers: ["http://172.17.0.5:80"], https: { web: "http", secure: "https", certResolver: "letsencrypt", redirect: true } }),
    );
    expect(config).toEqual({
      http: {
        routers: {
          "shop-web": { rule: "Host(`shop.example.com`)", entryPoints: ["http"], service: "shop-web", middlewares: ["shop-web-https-redirect"] },
          "shop-web-https": { rule: "Host(`shop.example.com`)", entryPoints: ["https"], service: "shop-web", middlewares: ["shop-web-retry"], tls: { certResolver: "letsencrypt" } },
        },
        middlewares: {
          "shop-web-retry": { retry: { attempts: 5, initialInterval: "500ms" } },
          "shop-web-https-redirect": { redirectScheme: { scheme: "https", permanent: true } },
        },
        services: { "shop-web": { loadBalancer: { passHostHeader: true, servers: [{ url: "http://172.17.0.5:80" }] } } },
      },
    });
    expect(routeRouters(JSON.stringify(config))).toEqual(["shop-web", "shop-web-https"]);
  });

  it("names the hosts its rules route by name, which a Traefik taking over must hold certificates for", () => {
    const text = routeConfig({ name: "shop-web", rule: "Host(`Shop.example.com`) || Host(`www.example.com`)", servers: ["http://172.17.0.5:80"], https: { web: "web", secure: "websecure", redirect: true } });
    expect(routeRules(text)).toEqual(["Host(`Shop.example.com`) || Host(`www.example.com`)", "Host(`Shop.example.com`) || Host(`www.example.com`)"]);
    expect([...new Set(routeRules(text).flatMap(ruleHosts))]).toEqual(["shop.example.com", "www.example.com"]);
    // Traefik 2's list form and a label's rule; a regexp names no host.
    expect(ruleHosts("Host(`a.test`, `b.test`) && PathPrefix(`/x`)")).toEqual(["a.test", "b.test"]);
    expect(ruleHosts("HostRegexp(`^[^.]+\\.example\\.com$`)")).toEqual([]);
    expect(routeRules("not json")).toEqual([]);
  });

  it("without the redirect, serves the app on both; a certificate of its own comes from the store", () => {
    const config = JSON.parse(routeConfig({ name: "shop-web", rule: "Host(`shop.example.com`)", servers: ["http://172.17.0.5:80"], https: { web: "web", secure: "websecure", redirect: false } }));
    expect(config.http.routers).toEqual({
      "shop-web": { rule: "Host(`shop.example.com`)", entryPoints: ["web"], service: "shop-web", middlewares: ["shop-web-retry"] },
      "shop-web-https": { rule: "Host(`shop.example.com`)", entryPoints: ["websecure"], service: "shop-web", middlewares: ["shop-web-retry"], tls: {} },
    });
    expect(tlsFile("/home/deploy/.kamal/proxy/traefik", "shop-web")).toBe("/home/deploy/.kamal/proxy/traefik/shop-web@tls.yml");
    expect(JSON.parse(tlsConfig({ certificatePem: CERT, privateKeyPem: KEY }))).toEqual({ tls: { certificates: [{ certFile: CERT, keyFile: KEY }] } });
  });

  it("puts path prefixes in the rule and strips them, then forwarded headers, buffering and retries, with a response timeout", () => {
    const config = JSON.parse(
      routeConfig({
        name: "shop-api",
        rule: "Host(`shop.example.com`)",
        pathPrefixes: ["/api", "/oauth"],
        stripPathPrefix: true,
        servers: ["http://172.17.0.6:3000"],
        responseTimeout: 30,
        buffering: { maxRequestBody: 1_000_000, memory: 500_000 },
        stripForwardedHeaders: true,
      }),
    );
    expect(config).toEqual({
      http: {
        routers: {
          "shop-api": {
            rule: "(Host(`shop.example.com`)) && ((PathPrefix(`/api`) || PathPrefix(`/oauth`)))",
            service: "shop-api",
            middlewares: ["shop-api-strip-prefix", "shop-api-forwarded", "shop-api-buffering", "shop-api-retry"],
          },
        },
        middlewares: {
          "shop-api-retry": { retry: { attempts: 5, initialInterval: "500ms" } },
          "shop-api-strip-prefix": { stripPrefix: { prefixes: ["/api", "/oauth"] } },
          "shop-api-forwarded": { plugin: { kamal: { mode: "forwarded" } } },
          "shop-api-buffering": { buffering: { maxRequestBodyBytes: 1_000_000, memRequestBodyBytes: 500_000, memResponseBodyBytes: 500_000 } },
        },
        services: { "shop-api": { loadBalancer: { passHostHeader: true, servers: [{ url: "http://172.17.0.6:3000" }], serversTransport: "shop-api" } } },
        serversTransports: { "shop-api": { forwardingTimeouts: { responseHeaderTimeout: "30s" } } },
      },
    });
    expect(fullRule("PathPrefix(`/`)", ["/api"])).toBe("PathPrefix(`/api`)");
    expect(fullRule("Host(`a`) || Host(`b`)", ["/api"])).toBe("(Host(`a`) || Host(`b`)) && (PathPrefix(`/api`))");
    expect(JSON.parse(routeConfig({ name: "x", rule: "PathPrefix(`/`)", pathPrefixes: ["/api"], stripPathPrefix: false, servers: ["http://a"] })).http.routers.x.middlewares).toEqual(["x-retry"]);
  });

  it("puts Traefik's errors middleware outermost, its pages answered by Traefik itself through the plugin", () => {
    const config = JSON.parse(
      routeConfig({ name: "shop-web", rule: "Host(`shop.example.com`)", servers: ["http://172.17.0.5:80"], pathPrefixes: ["/api"], errorPages: { pages: { "404": "<h1>gone</h1>", "504": "<h1>slow</h1>" }, at: "http://127.0.0.1:80", entrypoint: "http" } }),
    );
    expect(config.http.routers).toEqual({
      "shop-web": { rule: "(Host(`shop.example.com`)) && (PathPrefix(`/api`))", service: "shop-web", middlewares: ["shop-web-pages", "shop-web-strip-prefix", "shop-web-retry"] },
      "shop-web-page-504": { rule: "ClientIP(`127.0.0.1`) && Path(`/.kamal-pages/shop-web/504`)", entryPoints: ["http"], service: "noop@internal", middlewares: ["shop-web-page-504"] },
    });
    expect(config.http.middlewares["shop-web-pages"]).toEqual({ errors: { status: ["504"], service: "shop-web-pages", query: "/.kamal-pages/shop-web/{status}" } });
    expect(config.http.middlewares["shop-web-page-504"]).toEqual({ plugin: { kamal: { mode: "respond", status: 200, body: "<h1>slow</h1>", contentType: "text/html; charset=utf-8" } } });
    expect(config.http.services["shop-web-pages"]).toEqual({ loadBalancer: { passHostHeader: false, servers: [{ url: "http://127.0.0.1:80" }] } });
    expect(JSON.parse(routeConfig({ name: "x", rule: "PathPrefix(`/`)", servers: ["http://a"], errorPages: { pages: { "500": "x" }, at: "http://127.0.0.1:80", entrypoint: "http" } })).http.middlewares).toEqual({
      "x-retry": { retry: { attempts: 5, initialInterval: "500ms" } },
    });
  });

  it("in maintenance answers with the page by the plugin, the servers kept; without the plugin, Traefik's own 503", () => {
    const page = "<h1>down</h1>";
    const config = JSON.parse(
      routeConfig({ name: "shop-web", rule: "Host(`shop.example.com`)", servers: ["http://172.17.0.5:80"], https: { web: "http", secure: "https", certResolver: "letsencrypt", redirect: true }, maintenance: { page, plugin: true } }),
    );
    expect(config.http.routers).toEqual({
      "shop-web": { rule: "Host(`shop.example.com`)", entryPoints: ["http"], service: "shop-web", middlewares: ["shop-web-https-redirect"] },
      "shop-web-https": { rule: "Host(`shop.example.com`)", entryPoints: ["https"], service: "shop-web", middlewares: ["shop-web-maintenance"], tls: { certResolver: "letsencrypt" } },
    });
    expect(config.http.middlewares["shop-web-maintenance"]).toEqual({ plugin: { kamal: { mode: "respond", status: 503, body: page, contentType: "text/html; charset=utf-8" } } });
    expect(config.http.services["shop-web"].loadBalancer.servers).toEqual([{ url: "http://172.17.0.5:80" }]);

    const bare = { name: "shop-web", rule: "PathPrefix(`/`)", servers: ["http://172.17.0.5:80"], maintenance: { page, plugin: false } };
    const fallback = JSON.parse(routeConfig(bare));
    expect(fallback.http.routers).toEqual({ "shop-web": { rule: "PathPrefix(`/`)", service: "shop-web" } });
    expect(fallback.http.services["shop-web"].loadBalancer.servers).toEqual([]);
    expect(writtenServers(bare)).toEqual([]);
    expect(writtenServers({ ...bare, maintenance: { page, plugin: true } })).toEqual(["http://172.17.0.5:80"]);
  });
});

describe("the maintenance page", () => {
  it("is the default page with the message in place, HTML-escaped, or the user's page (kamal-proxy's {{ .Message }})", () => {
    expect(maintenancePage({})).toBe(DEFAULT_MAINTENANCE_PAGE.replace(/\{\{ if \.Message \}\}.*\{\{ else \}\}(.*)\{\{ end \}\}/, "$1"));
    expect(maintenancePage({ message: "Back at <noon> & soon" })).toContain("<p>Back at &lt;noon&gt; &amp; soon</p>");
    expect(maintenancePage({ message: "x" })).not.toContain("will be back shortly");
    expect(maintenancePage({ page: "<p>{{ .Message }}</p>{{if .Message}}!{{end}}", message: "upgrading" })).toBe("<p>upgrading</p>!");
    expect(maintenancePage({ page: "<p>{{ .Message }}</p>{{- if .Message -}}!{{- else -}}?{{- end -}}" })).toBe("<p></p>?");
  });

  it("is served by a plugin that is well-formed Go (Traefik interprets it; the integration tests run it)", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kp-plugin-"));
    for (const f of traefikPluginFiles()) {
      mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
      writeFileSync(path.join(dir, f.path), f.content);
    }
    const src = path.join(dir, "src", PLUGIN_MODULE);
    expect(traefikPluginFiles().map((f) => f.path)).toEqual([`src/${PLUGIN_MODULE}/.traefik.yml`, `src/${PLUGIN_MODULE}/go.mod`, `src/${PLUGIN_MODULE}/plugin.go`]);
    // gofmt parses it (a syntax error fails) and prints any formatting it would change.
    expect(execFileSync("gofmt", ["-l", "-e", "."], { cwd: src, encoding: "utf8" })).toBe("");
  });
});

describe("Traefik with HTTPS", () => {
  it("adds the HTTPS entrypoint, the ACME resolver on the host's store and the redirect; publishes 443", () => {
    const cfg = traefikContainer.parse({
      hostName: "web-1", connection, image: "traefik:v3.6",
      tls: { redirect: true, acme: { email: "ops@example.com", caServer: "https://10.213.0.3:14000/dir", caCertificates: "PEM", challenge: "tls-alpn" } },
    });
    expect(traefikArgs(cfg)).toEqual([
      "--providers.docker", "--providers.file.directory=/etc/traefik/kamal", "--providers.file.watch", "--providers.providersThrottleDuration=50ms", "--serverstransport.forwardingtimeouts.idleconntimeout=1s",
      "--entrypoints.http.address=:80", "--entrypoints.http.transport.keepAliveMaxTime=2s",
      "--entrypoints.https.address=:443", "--entrypoints.https.transport.keepAliveMaxTime=2s",
      "--entrypoints.http.http.redirections.entrypoint.to=https", "--entrypoints.http.http.redirections.entrypoint.scheme=https", "--entrypoints.http.http.redirections.entrypoint.permanent",
      "--certificatesresolvers.letsencrypt.acme.storage=/etc/traefik/acme/acme.json", "--certificatesresolvers.letsencrypt.acme.caserver=https://10.213.0.3:14000/dir",
      "--certificatesresolvers.letsencrypt.acme.email=ops@example.com", "--certificatesresolvers.letsencrypt.acme.cacertificates=/etc/traefik/acme/ca.pem",
      "--certificatesresolvers.letsencrypt.acme.tlschallenge",
      "--api.insecure", "--entrypoints.traefik.address=:8080", PLUGIN_ARG, "--log.level=INFO",
    ]);
    expect(traefikPublish(cfg)).toEqual(["80:80", "443:443", "127.0.0.1:8080:8080"]);
    expect(trafficPorts({ ...cfg, tls: { ...cfg.tls!, hostPort: "10.0.0.5:8443" } })).toEqual([{ host: "80", container: 80 }, { host: "10.0.0.5:8443", container: 443 }]);
    const create = createTraefik(cfg, { name: "traefik_next_a1", dirs: traefikDirs("/home/deploy") });
    expect(create.text).toContain(" --publish 80:80 --publish 443:443 --publish 127.0.0.1:8080:8080 ");
    expect(create.text).toContain(
      " --volume /home/deploy/.kamal/proxy/traefik:/etc/traefik/kamal:ro --volume /home/deploy/.kamal/proxy/acme:/etc/traefik/acme --volume /home/deploy/.kamal/proxy/plugins-local:/plugins-local:ro ",
    );
    // A trial never writes the store.
    expect(trialTraefik(cfg, { name: "t", dirs: traefikDirs("/home/deploy") }).text).toContain(" --volume /home/deploy/.kamal/proxy/acme:/etc/traefik/acme:ro ");
  });

  it("uses HTTP-01 on the web entrypoint by default, Let's Encrypt's directory, and trusts forwarded headers when told", () => {
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", apiPort: 0, tls: { acme: {} }, forwardedHeaders: ["10.0.0.0/8", "192.168.1.1"] });
    expect(traefikArgs(cfg)).toEqual([
      "--providers.docker", "--providers.file.directory=/etc/traefik/kamal", "--providers.file.watch", "--providers.providersThrottleDuration=50ms", "--serverstransport.forwardingtimeouts.idleconntimeout=1s",
      "--entrypoints.http.address=:80", "--entrypoints.http.transport.keepAliveMaxTime=2s",
      "--entrypoints.https.address=:443", "--entrypoints.https.transport.keepAliveMaxTime=2s",
      "--certificatesresolvers.letsencrypt.acme.storage=/etc/traefik/acme/acme.json", "--certificatesresolvers.letsencrypt.acme.caserver=https://acme-v02.api.letsencrypt.org/directory",
      "--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=http",
      "--entrypoints.http.forwardedheaders.trustedips=10.0.0.0/8,192.168.1.1", "--entrypoints.https.forwardedheaders.trustedips=10.0.0.0/8,192.168.1.1",
      PLUGIN_ARG, "--log.level=INFO",
    ]);
  });

  it("creates the ACME store (0700, acme.json 0600) only when missing: one Traefik writes, none re-creates it", () => {
    expect(ensureAcmeStore("/home/deploy/.kamal/proxy/acme").text).toBe(
      "mkdir -p -m 700 /home/deploy/.kamal/proxy/acme && { test -e /home/deploy/.kamal/proxy/acme/acme.json || { umask 077 && touch /home/deploy/.kamal/proxy/acme/acme.json; }; }",
    );
    expect(ensureAcmeStore("/home/deploy/.kamal/proxy/acme").policy.repeatable).toBe(true);
  });

  it("is read back from a running Traefik's arguments: entrypoints, resolvers, plugin, trusted headers", () => {
    expect(ours).toEqual({ web: "http", secure: "https", resolvers: ["letsencrypt"], plugin: true, webPort: 80, trustsForwardedHeaders: false });
    // Kamal 1's Let's Encrypt recipe, started before the plugin existed, behind a load balancer.
    expect(
      traefikCapabilities([
        "--providers.docker", "--entryPoints.web.address=:80", "--entryPoints.websecure.address=:443",
        "--certificatesResolvers.letsencrypt.acme.email=a@b.c", "--certificatesResolvers.le2.acme.tlschallenge=true", "--entryPoints.web.forwardedHeaders.insecure",
      ]),
    ).toEqual({ web: "web", secure: "websecure", resolvers: ["letsencrypt", "le2"], plugin: false, webPort: 80, trustsForwardedHeaders: true });
    expect(traefikCapabilities([])).toEqual({ web: "http", secure: undefined, resolvers: [], plugin: false, webPort: undefined, trustsForwardedHeaders: false });
  });
});

describe("a role's route on a host's Traefik", () => {
  it("takes HTTPS from the resolver, or installs its own certificate", () => {
    expect(routeFileSpec(web({ proxy: { ssl: true } }), ours)).toEqual({
      spec: {
        rule: "Host(`shop.example.com`)", pathPrefixes: [], stripPathPrefix: true,
        https: { web: "http", secure: "https", certResolver: "letsencrypt", redirect: true },
        responseTimeout: undefined, buffering: undefined, stripForwardedHeaders: false, maintenance: undefined, errorPages: undefined,
      },
      certificate: undefined,
      problems: [],
      notes: [],
    });
    const own = routeFileSpec(web({ proxy: { ssl: { certificatePem: CERT, privateKeyPem: KEY }, sslRedirect: false } }), ours);
    expect(own.spec.https).toEqual({ web: "http", secure: "https", certResolver: undefined, redirect: false });
    expect(own.certificate).toEqual({ certificatePem: CERT, privateKeyPem: KEY });
  });

  it("serves the pages of Traefik's own errors (502, 504) where the Traefik has the plugin; says when it cannot", () => {
    const errorPages = { "404": "<h1>gone</h1>", "502": "<h1>down</h1>", "504": "<h1>slow</h1>" };
    expect(routeFileSpec(web({ errorPages }), ours)).toMatchObject({ spec: { errorPages: { pages: errorPages, at: "http://127.0.0.1:80", entrypoint: "http" } }, notes: [] });
    expect(routeFileSpec(web({ errorPages: { "404": "<h1>gone</h1>" } }), ours)).toMatchObject({ spec: { errorPages: undefined }, notes: [] });
    expect(routeFileSpec(web({ errorPages }), { ...ours, plugin: false })).toMatchObject({
      spec: { errorPages: undefined },
      problems: [],
      notes: ["the error pages (502, 504) are not served by the Traefik on web-1: it was started without this provider's plugin (any change of that Traefik restarts it with the plugin); its errors are its own"],
    });
  });

  it("says what the Traefik lacks, naming the setting, before anything changes", () => {
    const bare = traefikCapabilities(["--entrypoints.http.address=:80"]);
    expect(routeFileSpec(web({ proxy: { ssl: true, forwardHeaders: true } }), bare).problems).toEqual([
      "proxy.ssl: the Traefik on web-1 has no HTTPS entrypoint: give that Traefik `tls` (an entrypoint on port 443)",
      "proxy.ssl: the Traefik on web-1 has no ACME certificate resolver: give that Traefik `tls.acme`, or give this role its certificate (ssl.certificatePem, ssl.privateKeyPem)",
      "proxy.forwardHeaders: the Traefik on web-1 does not trust forwarded headers, so the app would not see a client's: give that Traefik `forwardedHeaders` (true, or the addresses of the proxy in front of it)",
    ]);
    const trusting = { ...ours, trustsForwardedHeaders: true };
    expect(routeFileSpec(web({ proxy: { forwardHeaders: false } }), trusting).spec.stripForwardedHeaders).toBe(true);
    expect(routeFileSpec(web({ proxy: { forwardHeaders: false } }), ours).spec.stripForwardedHeaders).toBe(false);
    expect(routeFileSpec(web({ maintenance: { message: "soon" } }), { ...ours, plugin: false }).spec.maintenance).toEqual({ page: maintenancePage({ message: "soon" }), plugin: false });
    expect(routeOnlySettings(web({ proxy: { ssl: true, pathPrefixes: ["/a"], responseTimeout: "10s", buffering: {}, forwardHeaders: false }, maintenance: {} }))).toEqual([
      "proxy.ssl", "proxy.pathPrefixes", "proxy.responseTimeout", "proxy.buffering", "proxy.forwardHeaders", "maintenance",
    ]);
    expect(routeOnlySettings(web())).toEqual([]);
  });
});

describe("route settings are refused with the path, never the value", () => {
  const problems = (over: Record<string, unknown>) => {
    try {
      parseInputs(appContainer, { hostName: "web-1", connection, service: "shop", role: "web", image: "shop", version: "v1", traefik: true, healthcheck: {}, ...over });
      return "";
    } catch (e) {
      return (e as Error).message;
    }
  };
  it("ssl needs host names, and a certificate for a wildcard", () => {
    expect(problems({ proxy: { ssl: true } })).toBe("proxy.ssl: needs a host name to serve (proxy.host or proxy.hosts): a certificate is issued for names");
    expect(problems({ proxy: { ssl: true }, routeHosts: ["*.example.com"] })).toBe(
      "proxy.ssl: cannot get a certificate for a wildcard host name by HTTP or TLS-ALPN challenge: give the certificate (ssl.certificatePem and ssl.privateKeyPem)",
    );
    expect(problems({ proxy: { ssl: { certificatePem: CERT, privateKeyPem: KEY } }, routeHosts: ["*.example.com"] })).toBe("");
  });
  it("a certificate and key must be PEM; sizes, prefixes and timeouts their own shapes", () => {
    expect(problems({ routeHosts: ["a.example.com"], proxy: { ssl: { certificatePem: "secret-cert", privateKeyPem: "hunter2" } } })).toBe(
      "proxy.ssl.certificatePem: must be PEM text (-----BEGIN CERTIFICATE-----)\nproxy.ssl.privateKeyPem: must be PEM text (-----BEGIN PRIVATE KEY-----)",
    );
    expect(problems({ proxy: { pathPrefixes: ["api"], responseTimeout: "soon", buffering: { maxRequestBody: "lots" } } })).toBe(
      'proxy.pathPrefixes.0: must be a URL path starting with "/", e.g. "/api"\n' +
        'proxy.responseTimeout: must be a number of seconds or a duration like "10s", "500ms", "2m"\n' +
        'proxy.buffering.maxRequestBody: must be a number of bytes or a size like "10MB"',
    );
    expect(problems({ proxy: { sslRedirect: true, bogus: 1 } })).toBe("proxy.bogus: is not a supported key");
  });
  it("sizes are bytes: numbers, Ruby's underscores, units of 1000 or 1024", () => {
    expect(["40_000_000", "512KB", "10MB", "1GB", "1.5k", "2MiB", "7", 1234].map((v) => bytes.parse(v))).toEqual([40_000_000, 512_000, 10_000_000, 1_000_000_000, 1500, 2_097_152, 7, 1234]);
  });
  it("Traefik's tls and trusted addresses", () => {
    const t = (over: Record<string, unknown>) => traefikContainer.safeParse({ hostName: "web-1", connection, image: "traefik:v3.6", ...over });
    expect(t({ tls: { acme: { email: "nope", caServer: "not a url", challenge: "dns" } } }).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      "tls.acme.email: must be an email address",
      "tls.acme.caServer: must be a URL",
      'tls.acme.challenge: Invalid option: expected one of "http"|"tls-alpn"',
    ]);
    expect(t({ forwardedHeaders: ["10.0.0.0/8", "anywhere"] }).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      'forwardedHeaders.1: must be an IP address or a CIDR like "10.0.0.0/8"',
    ]);
  });
});

/** Every deploy.yml key Kamal 1.9 and 2.x accept, as the loader reads it. */
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadKamalConfig, normalizeKamalConfig } from "../../../kamal/config";
import { kamalConfigView, type SecretText } from "../../../kamal/model";
import { app, errorsOf, minimal } from "./fixtures";

describe("Kamal config: every supported key", () => {
  it("reads a Kamal 1 config with roles, tags, secrets, Traefik and accessories", async () => {
    const c = normalizeKamalConfig({
      service: "hey",
      image: "acme/hey",
      servers: {
        web: { hosts: ["10.0.0.1", { "10.0.0.2": ["canary", "eu"] }], labels: { team: "web" }, options: { memory: "1g" } },
        workers: {
          hosts: ["10.0.0.3"],
          cmd: "bin/jobs",
          env: { clear: { QUEUE: "default" }, secret: ["JOBS_KEY"] },
          healthcheck: { cmd: "bin/check" },
          logging: { driver: "local", options: { "max-size": "5m" } },
        },
        cron: { hosts: ["10.0.0.3"], cmd: ["bin/cron", "-f"], traefik: false },
      },
      registry: { server: "ghcr.io", username: "bot", password: ["REGISTRY_TOKEN"] },
      env: {
        clear: { RAILS_ENV: "production", WORKERS: 2, FORCE_SSL: true },
        secret: ["DATABASE_URL"],
        tags: { canary: { CANARY: "1" }, eu: { clear: { REGION: "eu" }, secret: ["EU_KEY"] } },
      },
      ssh: { user: "deploy", port: 2222, proxy: "jump@bastion.example.com:2200", keys: ["~/.ssh/deploy"], key_data: ["SSH_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nwritten-out\n-----END OPENSSH PRIVATE KEY-----"] },
      healthcheck: { path: "/health", port: 3001, interval: "2s", max_attempts: 4 },
      boot: { limit: "50%", wait: 5 },
      stop_wait_time: 20,
      retain_containers: 2,
      labels: { owner: "platform" },
      volumes: ["/data:/rails/storage"],
      logging: { driver: "json-file", options: { "max-size": "100m" } },
      primary_role: "web",
      traefik: {
        image: "traefik:v3.6",
        host_port: 8080,
        args: { accesslog: true, "log.level": "WARN" },
        labels: { "traefik.http.routers.dashboard.rule": "Host(`t.example.com`)" },
        options: { publish: ["443:443"] },
        env: { clear: { TZ: "UTC" }, secret: ["CF_TOKEN"] },
      },
      accessories: {
        db: {
          image: "mysql:8.0",
          host: "10.0.0.4",
          port: "127.0.0.1:3306:3306",
          cmd: "--default-authentication-plugin=mysql_native_password",
          env: { clear: { MYSQL_ROOT_HOST: "%" }, secret: ["MYSQL_ROOT_PASSWORD"] },
          directories: ["data:/var/lib/mysql"],
          volumes: ["/backups:/backups"],
          options: { "cap-add": "SYS_NICE" },
          labels: { backup: "daily" },
        },
        cache: { service: "shared-redis", image: "redis:7", roles: ["workers"], port: 6379 },
      },
    });
    expect(c.image).toBe("ghcr.io/acme/hey");
    expect(c.registry).toEqual({ server: "ghcr.io", username: { value: "bot" }, password: { secret: "REGISTRY_TOKEN" } });
    expect(c.ssh).toEqual({
      user: "deploy",
      port: 2222,
      proxy: { host: "bastion.example.com", user: "jump", port: 2200 },
      keyPaths: ["~/.ssh/deploy"],
      keyData: [{ secret: "SSH_KEY" }, expect.objectContaining({})],
      hostNames: {},
    });
    // Kamal 2.10+: a key_data entry names a secret; a key written out (deprecated) is the key
    // itself: never in JSON, a string or an inspection of the config.
    expect(c.secretNames).toContain("SSH_KEY");
    const written = c.ssh.keyData[1] as SecretText;
    expect(written.reveal()).toContain("written-out");
    expect(JSON.stringify(c)).not.toContain("written-out");
    expect(`${written}`).toBe("[secret]");
    expect((await import("node:util")).inspect(c, { depth: 10 })).not.toContain("written-out");
    expect(c.warnings).toContain("ssh.key_data: a key written out in deploy.yml is deprecated in Kamal (removed in Kamal 3): put it in a secret and name the secret");
    const [web, workers, cron] = c.roles;
    expect(web).toEqual({
      name: "web",
      hosts: [
        { address: "10.0.0.1", tags: [], env: { clear: { RAILS_ENV: "production", WORKERS: "2", FORCE_SSL: "true" }, secret: ["DATABASE_URL"] } },
        {
          address: "10.0.0.2",
          tags: ["canary", "eu"],
          env: { clear: { RAILS_ENV: "production", WORKERS: "2", FORCE_SSL: "true", CANARY: "1", REGION: "eu" }, secret: ["DATABASE_URL", "EU_KEY"] },
        },
      ],
      cmd: undefined,
      options: { memory: "1g" },
      labels: { owner: "platform", team: "web" },
      traefik: true,
      appPort: 3001,
      // Kamal 1 polls 4 times with pauses of 1, 2, 3 and 4 seconds.
      healthcheck: { path: "/health", port: 3001, cmd: undefined, interval: 2, deadline: 10 },
      routeHosts: [],
      stopWaitTime: undefined,
      logging: { driver: "json-file", options: { "max-size": "100m" } },
    });
    expect(workers.traefik).toBe(false);
    expect(workers.cmd).toBe("bin/jobs");
    expect(workers.hosts[0].env).toEqual({
      clear: { RAILS_ENV: "production", WORKERS: "2", FORCE_SSL: "true", QUEUE: "default" },
      secret: ["DATABASE_URL", "JOBS_KEY"],
    });
    expect(workers.healthcheck).toEqual({ path: "/health", port: 3001, cmd: "bin/check", interval: 2, deadline: 10 });
    expect(workers.logging).toEqual({ driver: "local", options: { "max-size": "5m" } });
    expect(cron.cmd).toEqual(["bin/cron", "-f"]);
    expect(cron.healthcheck).toBeUndefined();
    expect(c.primaryRole).toBe("web");
    expect(c.boot).toEqual({ limit: "50%", wait: 5, parallelRoles: false });
    expect(c.stopWaitTime).toBe(20);
    expect(c.retainContainers).toBe(2);
    expect(c.volumes).toEqual(["/data:/rails/storage"]);
    expect(c.traefik).toEqual({
      image: "traefik:v3.6",
      hostPort: 8080,
      args: { accesslog: true, "log.level": "WARN" },
      labels: { "traefik.http.routers.dashboard.rule": "Host(`t.example.com`)" },
      options: { publish: ["443:443"] },
      env: { clear: { TZ: "UTC" }, secret: ["CF_TOKEN"] },
      networks: [],
    });
    expect(c.accessories).toEqual([
      {
        name: "db",
        containerName: "hey-db",
        image: "mysql:8.0",
        hosts: ["10.0.0.4"],
        port: "127.0.0.1:3306:3306",
        cmd: "--default-authentication-plugin=mysql_native_password",
        env: { clear: { MYSQL_ROOT_HOST: "%" }, secret: ["MYSQL_ROOT_PASSWORD"] },
        files: [],
        directories: ["data:/var/lib/mysql"],
        volumes: ["/backups:/backups"],
        options: { "cap-add": "SYS_NICE" },
        labels: { backup: "daily" },
      },
      {
        name: "cache",
        containerName: "shared-redis",
        image: "redis:7",
        hosts: ["10.0.0.3"],
        port: 6379,
        cmd: undefined,
        env: { clear: {}, secret: [] },
        files: [],
        directories: [],
        volumes: [],
        options: {},
        labels: {},
      },
    ]);
    expect(c.secretNames).toEqual(["CF_TOKEN", "DATABASE_URL", "EU_KEY", "JOBS_KEY", "MYSQL_ROOT_PASSWORD", "REGISTRY_TOKEN", "SSH_KEY"]);
    expect(c.warnings).toEqual(["ssh.key_data: a key written out in deploy.yml is deprecated in Kamal (removed in Kamal 3): put it in a secret and name the secret"]);
  });

  it("reads an accessory's files and directories with Kamal's mode and owner", () => {
    const dir = app({
      "config/my.cnf": "[mysqld]\n",
      "config/deploy.yml": [
        "service: hey", "image: acme/hey", "servers: [10.0.0.1]", "proxy: {}",
        "accessories:",
        "  db:",
        "    image: mysql:8",
        "    host: 10.0.0.2",
        "    files:",
        "      - { local: config/my.cnf, remote: /etc/mysql/my.cnf, mode: 600, owner: \"999:999\" }",
        "    directories:",
        "      - { local: data, remote: /var/lib/mysql, mode: \"0700\", owner: mysql }",
        "      - logs:/var/log/mysql",
      ].join("\n"),
    });
    const [db] = loadKamalConfig({ file: path.join(dir, "config/deploy.yml") }).accessories;
    expect(db.files).toEqual([{ source: "config/my.cnf", target: "/etc/mysql/my.cnf", content: "[mysqld]\n", template: false, mode: "0600", owner: "999:999" }]);
    expect(db.directories).toEqual([{ path: "data:/var/lib/mysql", mode: "0700", owner: "mysql" }, "logs:/var/log/mysql"]);
  });

  it("merges a role's proxy and logging deeply over the top-level ones, as Kamal's deep_merge", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      proxy: { host: "a.example.com", healthcheck: { path: "/health", interval: 2 } },
      logging: { driver: "json-file", options: { "max-size": "5m" } },
      servers: { web: { hosts: ["h"], proxy: { healthcheck: { interval: 5 } }, logging: { options: { "max-file": "3" } } } },
    });
    expect(c.roles[0].healthcheck).toMatchObject({ path: "/health", interval: 5 });
    expect(c.roles[0].routeHosts).toEqual(["a.example.com"]);
    expect(c.roles[0].logging).toEqual({ driver: "json-file", options: { "max-size": "5m", "max-file": "3" } });
  });

  it("reads the shorthand forms: a host list for web, a flat env; Kamal 2's defaults unless a Kamal 1 key says otherwise", () => {
    const c = normalizeKamalConfig({ ...minimal, env: { A: 1 } });
    expect(c.kamal).toBe(2);
    expect(c.roles.map((r) => [r.name, r.traefik, r.appPort, r.healthcheck])).toEqual([["web", true, 80, { path: "/up", port: 80, interval: 1, timeout: 5, deadline: 30 }]]);
    expect(c.env).toEqual({ clear: { A: "1" }, secret: [] });
    // Traefik stands in for kamal-proxy: the release the tests run; Kamal 1's default is 1.9.3's.
    expect(c.traefik?.image).toBe("traefik:v3.6");
    expect(c.registry).toBeUndefined();
    const k1 = normalizeKamalConfig({ ...minimal, traefik: { args: { accesslog: true } } });
    expect(k1.kamal).toBe(1);
    expect(k1.traefik?.image).toBe("traefik:v2.11");
    expect(k1.roles.map((r) => [r.name, r.traefik, r.appPort, r.healthcheck])).toEqual([
      ["web", true, 3000, { path: "/up", port: 3000, cmd: undefined, interval: 1, deadline: 28 }],
    ]);
    expect(normalizeKamalConfig({ ...minimal, stop_wait_time: 5 }).kamal).toBe(1);
    expect(normalizeKamalConfig({ ...minimal, servers: { web: { hosts: ["h"], traefik: true } } }).kamal).toBe(1);
    expect(normalizeKamalConfig({ ...minimal, env: { secret: ["DB_PASSWORD:MAIN_DB_PASSWORD"] } }).kamal).toBe(2);
    expect(normalizeKamalConfig({ ...minimal, env: { A: 1 } }, { kamal: 1 }).roles[0].appPort).toBe(3000);
    // Kamal 1's log_lines: how much of a failed container's log the failure shows.
    const lines = normalizeKamalConfig({ ...minimal, healthcheck: { log_lines: 100 } }, { kamal: 1 });
    expect([lines.roles[0].healthcheck?.logLines, lines.warnings.filter((w) => w.includes("log_lines"))]).toEqual([100, []]);
    // Kamal 1's cord: another directory in the container, or none (false).
    expect(normalizeKamalConfig({ ...minimal, healthcheck: { cord: "/cord" } }, { kamal: 1 }).roles[0].healthcheck?.cord).toBe("/cord");
    const none = normalizeKamalConfig({ ...minimal, healthcheck: { cord: false } }, { kamal: 1 });
    expect([none.roles[0].healthcheck?.cord, none.warnings.filter((w) => w.includes("cord"))]).toEqual([false, []]);
  });

  it("Kamal 2: the primary role is behind the proxy unless it says false; another role only when it says so", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      primary_role: "app",
      servers: { app: ["10.0.0.1"], web: ["10.0.0.2"], api: { hosts: ["10.0.0.3"], proxy: { app_port: 4000, host: "api.example.com" } }, jobs: { hosts: ["10.0.0.4"], proxy: true } },
      proxy: { app_port: 3000, host: "app.example.com" },
    });
    expect(c.roles.map((r) => [r.name, r.traefik, r.appPort, r.routeHosts, r.healthcheck?.port])).toEqual([
      ["app", true, 3000, ["app.example.com"], 3000],
      ["web", false, 80, [], undefined],
      ["api", true, 4000, ["api.example.com"], 4000],
      ["jobs", true, 3000, ["app.example.com"], 3000],
    ]);
    const off = normalizeKamalConfig({ ...minimal, servers: { web: { hosts: ["h"], proxy: false } } });
    expect([off.roles[0].traefik, off.roles[0].healthcheck, off.traefik]).toEqual([false, undefined, undefined]);
  });

  it("Kamal 2's proxy.run and proxy.logging on the Traefik: ports on each bind address, log size, debug, metrics, options, logged headers", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      proxy: {
        host: "a.example.com",
        ssl: true,
        run: { http_port: 8080, https_port: 8443, bind_ips: ["10.0.0.9", "::1"], log_max_size: "30m", debug: true, metrics_port: 9090, options: { memory: "512m" }, version: "v0.9.0" },
      },
    });
    expect(c.traefik).toMatchObject({
      hostPort: "10.0.0.9:8080:80",
      tls: { acme: {}, hostPort: "10.0.0.9:8443" },
      options: { memory: "512m", publish: ["[::1]:8080:80", "[::1]:8443:443"], "log-opt": "max-size=30m", expose: 9090 },
      args: { "log.level": "DEBUG", "metrics.prometheus": true, "metrics.prometheus.entryPoint": "metrics", "entryPoints.metrics.address": ":9090" },
    });
    expect(c.warnings).toContain("proxy.run.version: not applied (kamal-proxy's image; the Traefik here is KamalApp's traefikImage)");
    // proxy.logging, the top-level one's and the roles': Traefik's access log keeps those headers.
    const logged = normalizeKamalConfig({
      ...minimal,
      servers: { web: { hosts: ["10.0.0.1"], proxy: { logging: { response_headers: ["X-Request-ID"] } } } },
      proxy: { logging: { request_headers: ["Cache-Control", "User-Agent"] } },
    });
    expect(logged.traefik?.args).toEqual({
      accesslog: true,
      "accesslog.format": "json",
      "accesslog.fields.headers.defaultMode": "drop",
      "accesslog.fields.headers.names.Cache-Control": "keep",
      "accesslog.fields.headers.names.User-Agent": "keep",
      "accesslog.fields.headers.names.X-Request-ID": "keep",
    });
    // Only the ports: the web entrypoint's port, and no HTTPS entrypoint without ssl.
    const plain = normalizeKamalConfig({ ...minimal, proxy: { run: { http_port: 8080, https_port: 8443 } } });
    expect([plain.traefik?.hostPort, plain.traefik?.tls, plain.traefik?.options]).toEqual([8080, undefined, {}]);
  });

  it("Kamal 2's accessory proxy: routed by its host names to its app_port, on a Traefik of its hosts", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      deploy_timeout: 45,
      accessories: {
        panel: { image: "grafana/grafana:11", host: "10.0.0.2", proxy: { host: "panel.example.com", app_port: 3000, ssl: true, healthcheck: { path: "/api/health", timeout: 2 } } },
      },
    });
    expect(c.accessories[0].proxy).toEqual({
      hosts: ["panel.example.com"],
      appPort: 3000,
      route: { ssl: true, sslRedirect: undefined, pathPrefixes: [], stripPathPrefix: undefined, responseTimeout: 30, buffering: undefined, forwardHeaders: false },
      // Routed once it answers, within deploy_timeout, as kamal-proxy's deploy waits.
      healthcheck: { path: "/api/health", interval: 1, timeout: 2, deadline: 45 },
    });
    // The Traefik serves HTTPS for it (Let's Encrypt), as kamal-proxy would.
    expect(c.traefik?.tls).toEqual({ acme: {} });
    expect(c.warnings.filter((w) => w.includes("healthcheck"))).toEqual([]);
    // Kamal accepts one without a host (kamal-proxy sends it what no app claims): read, said, not routed.
    const hostless = normalizeKamalConfig({ ...minimal, accessories: { panel: { image: "i", host: "h", proxy: { app_port: 3000 } } } });
    expect(hostless.accessories[0].proxy).toBeUndefined();
    expect(hostless.warnings).toContain("accessories.panel.proxy: not routed (it names no host: set host or hosts to route those names to it)");
  });

  it("Kamal 2 keys Kamal accepts: aliases, localhost registry without credentials, cord false, string ports, parallel_roles, stop_timeout, accessory network", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      servers: { web: { hosts: ["10.0.0.1"], stop_timeout: 12 }, jobs: { hosts: ["10.0.0.2"] } },
      registry: { server: "localhost:5555" },
      env: { secret: ["DB_PASSWORD:MAIN_DB_PASSWORD", "API_KEY"] },
      healthcheck: undefined,
      ssh: { port: "2222", proxy: "bastion.example.com" },
      boot: { limit: 2, parallel_roles: true },
      drain_timeout: 20,
      readiness_delay: 4,
      accessories: { db: { image: "postgres:17", role: "jobs", network: "kamal" } },
    });
    expect(c.registry).toBeUndefined();
    expect(c.boot).toEqual({ limit: 2, parallelRoles: true });
    expect(normalizeKamalConfig({ ...minimal, sshkit: { max_concurrent_starts: 10, pool_idle_timeout: 300, dns_retries: 5 } })).toMatchObject({
      ssh: { maxConcurrentStarts: 10 },
      warnings: [
        "sshkit.pool_idle_timeout: not needed (a connection stays open for the whole update or command, never closed for being idle)",
        "sshkit.dns_retries: not used (a failed lookup is retried as any failed connection is: ssh.dialAttempts, 3 attempts)",
      ],
    });
    expect(c.image).toBe("localhost:5555/acme/hey");
    expect(c.env.secret).toEqual(["DB_PASSWORD:MAIN_DB_PASSWORD", "API_KEY"]);
    expect(c.secretNames).toEqual(["API_KEY", "MAIN_DB_PASSWORD"]);
    expect(c.ssh).toEqual({ port: 2222, proxy: { host: "bastion.example.com", user: "root" }, keyPaths: [], keyData: [], hostNames: {} });
    expect(c.roles.map((r) => [r.name, r.stopWaitTime])).toEqual([["web", 12], ["jobs", undefined]]);
    expect(c.stopWaitTime).toBe(20);
    // readiness_delay: how long a role without a health check must keep running (7 by
    // default in Kamal 2 and in Kamal 1.9, whose key it is too).
    expect(c.readinessDelay).toBe(4);
    expect(normalizeKamalConfig({ ...minimal, proxy: {} }).readinessDelay).toBe(7);
    expect(normalizeKamalConfig({ ...minimal, traefik: {} }).readinessDelay).toBe(7);
    expect(normalizeKamalConfig({ ...minimal, traefik: {}, readiness_delay: 3 })).toMatchObject({ kamal: 1, readinessDelay: 3 });
    expect(c.accessories[0]).toMatchObject({ hosts: ["10.0.0.2"], options: { network: "kamal" } });
    expect(c.roles.map((r) => r.options)).toEqual([{ network: "kamal" }, { network: "kamal" }]);
    expect(c.traefik?.networks).toEqual(["kamal"]);
    const own = normalizeKamalConfig({ ...minimal, servers: { web: { hosts: ["h"], options: { network: "private" } } }, accessories: { db: { image: "i", host: "h", network: "private" } } });
    // As Kamal 2's docker run: a role's options add their network beside kamal; an accessory's
    // own `network` replaces kamal, and its options add theirs.
    expect([own.roles[0].options, own.accessories[0].options]).toEqual([{ network: ["kamal", "private"] }, { network: "private" }]);
    const more = normalizeKamalConfig({ ...minimal, accessories: { db: { image: "i", host: "h", options: { network: "backend" } } }, servers: { web: ["h"], jobs: { hosts: ["h"], options: { network: "host" } } } });
    expect(more.accessories[0].options).toEqual({ network: ["kamal", "backend"] });
    expect(more.warnings).toContain("servers.jobs.options.network: host cannot be combined with the kamal network Kamal 2 puts the container on: Docker refuses the pair, so its deploy fails, as Kamal's does");
    expect(normalizeKamalConfig({ ...minimal, traefik: {}, healthcheck: { cord: false } }).roles[0].healthcheck?.path).toBe("/up");
  });

  it("maps Kamal 2's proxy to Traefik: hosts, HTTPS from Let's Encrypt, timeouts, health check; warns about the rest by name", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      servers: { web: ["10.0.0.1"], jobs: { hosts: ["10.0.0.1"], cmd: "bin/jobs", proxy: false } },
      proxy: { app_port: 3000, hosts: ["a.example.com", "b.example.com"], ssl: true, healthcheck: { path: "/ready", interval: 2, timeout: 3 }, response_timeout: 10, logging: { request_headers: ["X-Id"] } },
      deploy_timeout: 40,
      drain_timeout: 15,
      builder: { arch: "amd64" },
      aliases: { console: "app exec -i bin/rails c" },
      asset_path: "/rails/public/assets",
    });
    const [web, jobs] = c.roles;
    expect(web.traefik).toBe(true);
    expect(web.appPort).toBe(3000);
    expect(web.healthcheck).toEqual({ path: "/ready", port: 3000, interval: 2, timeout: 3, deadline: 40 });
    expect(web.routeHosts).toEqual(["a.example.com", "b.example.com"]);
    // kamal-proxy's defaults: headers not forwarded with ssl, redirect (unset: the Service's default, true).
    expect(web.route).toEqual({ ssl: true, sslRedirect: undefined, pathPrefixes: [], stripPathPrefix: undefined, responseTimeout: 10, buffering: undefined, forwardHeaders: false });
    expect(c.traefik?.tls).toEqual({ acme: {} });
    expect(c.traefik?.forwardedHeaders).toBeUndefined();
    expect(jobs.traefik).toBe(false);
    expect(jobs.route).toBeUndefined();
    // asset_path: bridged for the role behind the proxy only, as in Kamal.
    expect(web.assetPath).toBe("/rails/public/assets");
    expect(jobs.assetPath).toBeUndefined();
    expect(c.stopWaitTime).toBe(15);
    // The builder is read (KamalApp builds with it when asked): Kamal 2's default driver.
    expect(c.builder).toEqual({ platforms: ["linux/amd64"], driver: "docker-container", local: true, dockerfile: "Dockerfile", args: {}, secrets: [] });
    // Aliases are pulumi-kamal's too (cli/aliases.ts).
    expect(c.aliases).toEqual({ console: "app exec -i bin/rails c" });
    expect(c.warnings).toEqual([]);
    expect(c.traefik?.args).toMatchObject({ accesslog: true, "accesslog.fields.headers.names.X-Id": "keep" });
  });

  it("maps a certificate from secrets, path prefixes, buffering and forwarded headers; a Traefik that trusts them", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      servers: { web: ["10.0.0.1", "10.0.0.2"], api: { hosts: ["10.0.0.3"], proxy: { host: "api.example.com", path_prefix: "/api,/oauth", strip_path_prefix: false, buffering: { requests: true, max_request_body: "40_000_000", memory: 2_000_000 } } } },
      proxy: { host: "a.example.com,b.example.com", ssl: { certificate_pem: "CERT_PEM", private_key_pem: "KEY_PEM" }, ssl_redirect: false },
    });
    const [web, api] = c.roles;
    expect(web.routeHosts).toEqual(["a.example.com", "b.example.com"]);
    expect(web.route).toEqual({ ssl: { certificatePem: "CERT_PEM", privateKeyPem: "KEY_PEM" }, sslRedirect: false, pathPrefixes: [], stripPathPrefix: undefined, responseTimeout: 30, buffering: undefined, forwardHeaders: false });
    // A role's settings over the top-level ones, as Kamal merges them.
    expect(api.route).toEqual({
      ssl: { certificatePem: "CERT_PEM", privateKeyPem: "KEY_PEM" }, sslRedirect: false, pathPrefixes: ["/api", "/oauth"], stripPathPrefix: false, responseTimeout: 30,
      buffering: { maxRequestBody: 40_000_000, maxResponseBody: undefined, memory: 2_000_000 }, forwardHeaders: false,
    });
    expect(c.secretNames).toEqual(["CERT_PEM", "KEY_PEM"]);
    expect(c.traefik?.tls).toEqual({});
    expect(c.warnings).toContain("servers.api.proxy.buffering: Traefik buffers requests and responses together: both are buffered");
    const plain = normalizeKamalConfig({ ...minimal, proxy: { host: "a.example.com" } });
    expect([plain.roles[0].route?.forwardHeaders, plain.traefik?.forwardedHeaders, plain.traefik?.tls]).toEqual([true, true, undefined]);
  });

  it("reads run_directory (where the lock, audit log, env files and proxy files go); refuses a path that climbs out", () => {
    expect(normalizeKamalConfig({ ...minimal }).runDirectory).toBeUndefined();
    const c = normalizeKamalConfig({ ...minimal, run_directory: "/var/lib/kamal" });
    expect([c.runDirectory, c.warnings.filter((w) => w.includes("run_directory"))]).toEqual(["/var/lib/kamal", []]);
    expect(errorsOf({ ...minimal, run_directory: "../elsewhere" })).toBe('run_directory: must be a directory path of letters, digits, ".", "_", "-" and "/" (no "..")');
  });

  it("refuses what Kamal refuses about ssl, with Kamal's messages", () => {
    const problems = (doc: Record<string, unknown>) => {
      try {
        normalizeKamalConfig({ ...minimal, ...doc });
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(problems({ servers: ["10.0.0.1", "10.0.0.2"], proxy: { host: "a.example.com", ssl: true } })).toBe(
      "proxy.ssl: SSL is only supported on a single server unless you provide custom certificates, found 2 servers for role web",
    );
    expect(problems({ proxy: { ssl: true } })).toBe("proxy: Must set a host to enable automatic SSL");
    expect(problems({ proxy: { host: "a", hosts: ["b"] } })).toBe("proxy: Specify one of 'host' or 'hosts', not both");
    expect(problems({ proxy: { host: "a", ssl: { certificate_pem: "C" } } })).toBe("proxy.ssl: Missing private_key_pem setting (required when certificate_pem is present)");
    expect(problems({ servers: { web: { hosts: ["10.0.0.1"] }, api: { hosts: ["10.0.0.3"], proxy: { host: "a.example.com" } } }, proxy: { host: "a.example.com", ssl: true } })).toBe(
      "proxy: Different roles can't share the same host for SSL: a.example.com",
    );
  });

  it("reads accessory files and directories in both of Kamal's forms, with mount options and modes; an empty registry password is missing", () => {
    const dir = app({ "config/deploy.yml": "x: 1", "config/vector.toml": "[sources]\n", "config/init.sql": "select 1;\n" });
    const c = normalizeKamalConfig(
      {
        ...minimal,
        accessories: {
          log: {
            image: "timberio/vector", host: "h",
            files: ["config/vector.toml:/etc/vector/vector.toml:ro", { local: "config/init.sql", remote: "/docker-entrypoint-initdb.d/init.sql", mode: "0600" }],
            directories: ["data:/var/lib/vector:z", { local: "/srv/cache", remote: "/cache" }],
          },
        },
      },
      { appRoot: dir },
    );
    expect(c.accessories[0].files).toEqual([
      { source: "config/vector.toml", target: "/etc/vector/vector.toml", content: "[sources]\n", template: false, options: "ro", mode: "755" },
      { source: "config/init.sql", target: "/docker-entrypoint-initdb.d/init.sql", content: "select 1;\n", template: false, mode: "0600" },
    ]);
    expect(c.accessories[0].directories).toEqual(["data:/var/lib/vector:z", "/srv/cache:/cache"]);
    expect(errorsOf({ ...minimal, registry: { server: "ghcr.io", username: "AWS", password: null } })).toBe("registry.password: is required (only a localhost registry may have no credentials)");
    expect(errorsOf({ image: "i", servers: ["h"] })).toBe("service: is required");
    expect(errorsOf({ service: "s", image: "i" })).toBe("servers: is required");
  });

  it("shows what `kamal config` would print, beside what goes behind the proxy here", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      servers: { web: ["10.0.0.1", "10.0.0.2"], jobs: { hosts: ["10.0.0.3"], cmd: "bin/jobs" } },
      registry: { server: "ghcr.io", username: "bot", password: ["TOKEN"] },
      volumes: ["/data:/data"],
      ssh: { user: "deploy", proxy: "bastion.example.com" },
      proxy: { host: "hey.example.com" },
      accessories: { db: { image: "postgres:17", host: "10.0.0.4" } },
    });
    expect(kamalConfigView(c, "abc123")).toEqual({
      roles: ["web", "jobs"],
      hosts: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
      primary_host: "10.0.0.1",
      version: "abc123",
      repository: "ghcr.io/acme/hey",
      absolute_image: "ghcr.io/acme/hey:abc123",
      service_with_version: "hey-abc123",
      volume_args: ["--volume", "/data:/data"],
      ssh_options: { user: "deploy", port: 22, proxy: "root@bastion.example.com" },
      accessories: { db: { service: "hey-db", image: "postgres:17", hosts: ["10.0.0.4"] } },
      kamal_version: 2,
      destination: undefined,
      proxy_roles: [{ role: "web", hosts: ["10.0.0.1", "10.0.0.2"], app_port: 80, route_hosts: ["hey.example.com"], healthcheck: { path: "/up", port: 80, interval: 1, timeout: 5, deadline: 30 } }],
    });
  });

  it("merges a destination file deeply (lists replaced) and renders ERB", () => {
    const dir = app({
      "config/deploy.yml": [
        "service: hey",
        "image: acme/hey",
        "x-common: &common",
        "  memory: 1g",
        "servers:",
        "  web:",
        "    hosts: [10.0.0.1]",
        "    options:",
        "      <<: *common",
        "env:",
        "  clear:",
        "    RUBY: <%= File.read('.ruby-version').strip %>",
        "    # a comment with <%= `not run` %>",
        "    HOST: <%= ENV.fetch(\"APP_HOST\", \"localhost\") %>",
      ].join("\n"),
      "config/deploy.staging.yml": [
        "<% require 'dotenv'; Dotenv.load('.kamal/secrets.staging') %>",
        "servers:",
        "  web:",
        "    hosts:",
        "      - <%= ENV[\"STAGING_HOST\"] %>",
        "env:",
        "  clear:",
        "    STAGE: <%= ENV[\"STAGE\"] || \"staging\" %>",
      ].join("\n"),
      ".ruby-version": "3.3.1\n",
      ".kamal/secrets.staging": "STAGING_HOST=10.9.9.9\n",
    });
    const c = loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), destination: "staging", env: {}, erb: "builtin" });
    expect(c.destination).toBe("staging");
    expect(c.roles[0].hosts.map((h) => h.address)).toEqual(["10.9.9.9"]);
    // Kamal 2 (no Kamal 1 key): the app runs on the kamal network.
    expect(c.roles[0].options).toEqual({ memory: "1g", network: "kamal" });
    expect(c.env.clear).toEqual({ RUBY: "3.3.1", HOST: "localhost", STAGE: "staging" });
  });

  it("loads every real deploy.yml in test/fixtures/kamal-configs", () => {
    // Copied from the team's shared/kamal-configs: real files from public projects.
    const dir = path.resolve(__dirname, "../../fixtures/kamal-configs");
    const bases = readdirSync(dir).filter((f) => /^\d+-.*\.yml$/.test(f) && !/\.(stage|staging)\.yml$/.test(f));
    expect(bases.length).toBeGreaterThanOrEqual(5);
    for (const base of bases) {
      const dest = readdirSync(dir).find((f) => f.startsWith(base.replace(/\.yml$/, ".")) && f !== base);
      const files: Record<string, string> = { "config/deploy.yml": readFileText(path.join(dir, base)), ".ruby-version": "3.3.0\n", "db/staging.sql": "select 1;\n" };
      const destination = dest?.replace(base.replace(/\.yml$/, "."), "").replace(/\.yml$/, "");
      if (dest) files[`config/deploy.${destination}.yml`] = readFileText(path.join(dir, dest));
      const root = app(files);
      const c = loadKamalConfig({ file: path.join(root, "config/deploy.yml"), destination, env: { STAGING_HOST: "10.9.9.9" }, allowShellInErb: true });
      expect(c.roles.length, base).toBeGreaterThan(0);
      expect(c.roles.every((r) => r.hosts.length > 0), base).toBe(true);
    }
  });
});

function readFileText(p: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("node:fs").readFileSync(p, "utf8");
}

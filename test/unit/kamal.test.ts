import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseDotenv } from "../../provider/config/dotenv";
import { renderErb } from "../../provider/config/erb";
import { deepMerge, loadKamalConfig, normalizeKamalConfig } from "../../provider/config/kamal";

const minimal = { service: "hey", image: "acme/hey", servers: ["10.0.0.1"] };

function errorsOf(doc: Record<string, unknown>): string {
  try {
    normalizeKamalConfig(doc);
  } catch (e) {
    return (e as Error).message;
  }
  return "(no error)";
}

/** An app directory with config/deploy.yml (and more files). */
function app(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kamal-"));
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), content);
  }
  return dir;
}

describe("Kamal config: every supported key", () => {
  it("reads a Kamal 1 config with roles, tags, secrets, Traefik and accessories", () => {
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
      ssh: { user: "deploy", port: 2222, proxy: "jump@bastion.example.com:2200", keys: ["~/.ssh/deploy"], key_data: ["SSH_KEY"] },
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
      keyDataSecrets: ["SSH_KEY"],
    });
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
    expect(c.boot).toEqual({ limit: "50%", wait: 5 });
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
    expect(c.warnings).toEqual([]);
  });

  it("reads the shorthand forms: a host list for web, a flat env, Kamal 1 defaults", () => {
    const c = normalizeKamalConfig({ ...minimal, env: { A: 1 } });
    expect(c.roles.map((r) => [r.name, r.traefik, r.appPort, r.healthcheck])).toEqual([
      ["web", true, 3000, { path: "/up", port: 3000, cmd: undefined, interval: 1, deadline: 28 }],
    ]);
    expect(c.env).toEqual({ clear: { A: "1" }, secret: [] });
    expect(c.traefik?.image).toBe("traefik:v2.10");
    expect(c.registry).toBeUndefined();
  });

  it("maps the basics of Kamal 2's proxy to Traefik, and warns about the rest by name", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      servers: { web: ["10.0.0.1"], jobs: { hosts: ["10.0.0.1"], cmd: "bin/jobs", proxy: false } },
      proxy: { app_port: 3000, hosts: ["a.example.com", "b.example.com"], ssl: true, healthcheck: { path: "/ready", interval: 2, timeout: 5 }, response_timeout: 30 },
      deploy_timeout: 40,
      drain_timeout: 15,
      builder: { arch: "amd64" },
      aliases: { console: "app exec -i bin/rails c" },
      asset_path: "/rails/public/assets",
    });
    const [web, jobs] = c.roles;
    expect(web.traefik).toBe(true);
    expect(web.appPort).toBe(3000);
    expect(web.healthcheck).toEqual({ path: "/ready", port: 3000, cmd: undefined, interval: 2, deadline: 40 });
    expect(web.labels).toEqual({ "traefik.http.routers.hey-web.rule": "Host(`a.example.com`) || Host(`b.example.com`)" });
    expect(jobs.traefik).toBe(false);
    expect(c.stopWaitTime).toBe(15);
    expect(c.warnings).toEqual([
      "builder: not used (build and push images yourself; this deploys an existing image)",
      "aliases: not used (kamal CLI aliases have no Pulumi equivalent)",
      "asset_path: not used (asset bridging between versions is not supported: old fingerprinted assets may 404 during a swap)",
      "proxy.ssl: not supported with Traefik (configure Traefik args and labels instead)",
      "proxy.response_timeout: not supported with Traefik (configure Traefik args and labels instead)",
      "proxy.healthcheck.timeout: not used (curl inside the container probes health)",
    ]);
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
    const c = loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), destination: "staging", env: {} });
    expect(c.destination).toBe("staging");
    expect(c.roles[0].hosts.map((h) => h.address)).toEqual(["10.9.9.9"]);
    expect(c.roles[0].options).toEqual({ memory: "1g" });
    expect(c.env.clear).toEqual({ RUBY: "3.3.1", HOST: "localhost", STAGE: "staging" });
  });

  it("loads every real deploy.yml in test/fixtures/kamal-configs", () => {
    // Copied from the team's shared/kamal-configs: real files from public projects.
    const dir = path.resolve(__dirname, "../fixtures/kamal-configs");
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

describe("Kamal config: every error, with its path", () => {
  it("rejects unknown keys by name and wrong types by path", () => {
    expect(errorsOf({ ...minimal, servrs: [] })).toBe("servrs: is not a supported key");
    expect(errorsOf({ ...minimal, accessories: { db: { image: "mysql", host: "h", prot: 1 } } })).toBe("accessories.db.prot: is not a supported key");
    expect(errorsOf({ ...minimal, accessories: { db: { host: "h" } } })).toBe("accessories.db.image: is required");
    expect(errorsOf({ ...minimal, stop_wait_time: "ten" })).toBe("stop_wait_time: must be a number");
    expect(errorsOf({ service: "hey", servers: [] })).toBe("image: is required");
    expect(errorsOf({ ...minimal, service: "hey app" })).toBe("service: must contain only letters, digits, '_', '.', '-'");
    expect(errorsOf({ ...minimal, env: { clear: { A: { nested: 1 } } } })).toBe("env.clear.A: must be a string, number or boolean");
    expect(errorsOf({ ...minimal, env: { secret: ["BAD-NAME"] } })).toBe("env.secret.0: must be an environment variable name");
    expect(errorsOf({ ...minimal, registry: { username: "u", password: ["A", "B"] } })).toBe("registry.password: must name exactly one secret");
    expect(errorsOf({ ...minimal, boot: { limit: "half" } })).toBe('boot.limit: must be a number or a percentage like "25%"');
    expect(errorsOf({ ...minimal, healthcheck: { interval: "soon" } })).toBe('healthcheck.interval: must be seconds or a duration like "10s"');
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", host: "h", files: ["no-target"] } } })).toBe(
      'accessories.db.files.0: must be "local/path:/path/in/container"',
    );
  });

  it("rejects what cannot be deployed, naming the path", () => {
    expect(errorsOf({ ...minimal, servers: { web: { hosts: [] } } })).toBe("servers: no role has any host");
    expect(errorsOf({ ...minimal, primary_role: "api" })).toBe("primary_role: names no role with hosts (roles: web)");
    expect(errorsOf({ ...minimal, servers: { "we b": ["h"] } })).toBe("servers.we b: role names may contain only letters, digits, '_', '.', '-'");
    expect(errorsOf({ ...minimal, servers: { web: { hosts: [{ h1: "missing" }] } } })).toBe('servers.web.hosts.0: tag "missing" has no env.tags.missing');
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i" } } })).toBe("accessories.db: needs host, hosts or roles");
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", roles: ["api"] } } })).toBe(
      "accessories.db.roles: names no role with hosts: api\naccessories.db: needs host, hosts or roles",
    );
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", host: "h", files: ["missing.cnf:/etc/my.cnf"] } } })).toMatch(
      /^accessories\.db\.files\.0: missing\.cnf does not exist \(relative to .+\)$/,
    );
    expect(errorsOf({ ...minimal, ssh: { proxy_command: "nc %h %p" } })).toBe("ssh.proxy_command: is not supported: use ssh.proxy (a jump host)");
    expect(errorsOf({ ...minimal, proxy: { app_port: 80 }, traefik: { args: {} } })).toBe("traefik: cannot be combined with proxy (Kamal 2): choose one");
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", host: "h", registry: { server: "x" } } } })).toBe(
      "accessories.db.registry: is not supported: use an image the service's registry (or a public one) serves",
    );
  });

  it("reports a missing destination file and unsupported ERB by file and line", () => {
    const dir = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers: [a]\nenv:\n  clear:\n    V: <%= `git rev-parse HEAD` %>\n" });
    expect(() => loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), env: {} })).toThrow(
      "deploy.yml:6: ERB that runs a shell command is not run unless allowed (KamalApp's allowShellInErb): or set the value through ENV",
    );
    const ok = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers: [a]\n" });
    expect(() => loadKamalConfig({ file: path.join(ok, "config/deploy.yml"), destination: "prod" })).toThrow(
      "destination: deploy.prod.yml does not exist next to deploy.yml",
    );
  });
});

describe("ERB and dotenv", () => {
  const ctx = { env: { A: "1" } as Record<string, string | undefined>, root: "/nonexistent", file: "deploy.yml" };
  it("renders the supported expressions and refuses the rest", () => {
    expect(renderErb(`a: <%= ENV["A"] %>\nb: <%= ENV.fetch('B', 'x') %>\nc: <%= ENV["C"] || "d" %>`, { ...ctx })).toBe("a: 1\nb: x\nc: d");
    expect(() => renderErb("a: <%= ENV.fetch(\"MISSING\") %>", { ...ctx })).toThrow('deploy.yml:1: ENV.fetch("MISSING"): MISSING is not set');
    expect(() => renderErb("a: <%= 1 + 1 %>", { ...ctx })).toThrow(
      'deploy.yml:1: ERB expression not supported: only ENV["X"], ENV.fetch("X"[, "default"]), ENV["X"] || "default" and File.read("path")',
    );
    expect(() => renderErb("<% puts 'hi' %>", { ...ctx })).toThrow("deploy.yml:1: ERB control code is not supported (only Dotenv.load of a secrets file)");
    expect(() => renderErb("a: <%= File.read('.nope') %>", { ...ctx })).toThrow("deploy.yml:1: File.read: .nope does not exist");
    expect(renderErb("a: <%= `echo hi`.strip %>", { ...ctx, shell: (c) => `${c}\n` })).toBe("a: echo hi");
  });

  it("parses secrets files like Kamal and never runs commands", () => {
    expect(parseDotenv('# c\nexport A=1\nB="x\\ny" \nC=\'$A raw\'\nD=${A}-$B # trailing\n\nE=')).toEqual({
      A: "1",
      B: "x\ny",
      C: "$A raw",
      D: "1-x\ny",
      E: "",
    });
    expect(() => parseDotenv("TOKEN=$(kamal secrets fetch x)", ".kamal/secrets")).toThrow(
      ".kamal/secrets:1: TOKEN: command substitution $(…) is not supported: put the value itself, or set it with pulumi config set --secret TOKEN",
    );
    expect(() => parseDotenv("not a line", ".env")).toThrow(".env:1: expected KEY=value");
    expect(() => parseDotenv("A='open", ".env")).toThrow(".env:1: A: unterminated single quote");
    expect(() => parseDotenv('B="open', ".env")).toThrow(".env:1: B: unterminated double quote");
  });

  it("merges objects and replaces lists", () => {
    expect(deepMerge({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2], e: 3 } })).toEqual({ a: { b: 1, c: [2], e: 3 }, d: 1 });
  });
});

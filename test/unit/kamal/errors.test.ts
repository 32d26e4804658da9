/** Every deploy.yml error, with its path and never its value. */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadKamalConfig, normalizeKamalConfig } from "../../../kamal/config";
import { app, errorsOf, minimal } from "./fixtures";

describe("Kamal config: every error, with its path", () => {
  it("rejects unknown keys by name and wrong types by path", () => {
    expect(errorsOf({ ...minimal, servrs: [] })).toBe("servrs: is not a supported key");
    expect(errorsOf({ ...minimal, accessories: { db: { image: "mysql", host: "h", prot: 1 } } })).toBe("accessories.db.prot: is not a supported key");
    expect(errorsOf({ ...minimal, accessories: { db: { host: "h" } } })).toBe("accessories.db.image: is required");
    expect(errorsOf({ ...minimal, stop_wait_time: "ten" })).toBe("stop_wait_time: must be a number");
    expect(errorsOf({ service: "hey", servers: [] })).toBe("image: is required");
    expect(errorsOf({ ...minimal, service: "hey app" })).toBe("service: must contain only letters, digits, '_', '.', '-'");
    expect(errorsOf({ ...minimal, env: { clear: { A: { nested: 1 } } } })).toBe("env.clear.A: must be a string, number or boolean");
    expect(errorsOf({ ...minimal, env: { secret: ["BAD-NAME"] } })).toBe('env.secret.0: must be an environment variable name, or "NAME:SECRET_NAME"');
    expect(errorsOf({ ...minimal, registry: { username: "u", password: ["A", "B"] } })).toBe("registry.password: must name exactly one secret");
    expect(errorsOf({ ...minimal, boot: { limit: "half" } })).toBe('boot.limit: must be a number or a percentage like "25%"');
    expect(errorsOf({ ...minimal, sshkit: { max_concurrent_start: 10 } })).toBe("sshkit.max_concurrent_start: is not a supported key");
    expect(errorsOf({ ...minimal, proxy: { run: { http_prt: 8080 } } })).toBe("proxy.run.http_prt: is not a supported key");
    expect(errorsOf({ ...minimal, proxy: { logging: { request_headers: ["X Bad"] } } })).toBe("proxy.logging.request_headers.0: must be an HTTP header name");
    expect(errorsOf({ ...minimal, proxy: { run: { publish: false } } })).toBe(
      "proxy.run.publish: false is not supported: the Traefik here publishes its entrypoints on the host (set http_port and bind_ips to keep it off public addresses)",
    );
    expect(errorsOf({ ...minimal, sshkit: { max_concurrent_starts: 0 } })).toBe("sshkit.max_concurrent_starts: must be at least 1");
    expect(errorsOf({ ...minimal, healthcheck: { interval: "soon" } })).toBe('healthcheck.interval: must be seconds or a duration like "10s"');
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", host: "h", files: ["no-target"] } } })).toBe(
      'accessories.db.files.0: must be "local/path:/path/in/container[:options]"',
    );
  });

  it("rejects what cannot be deployed, naming the path", () => {
    expect(errorsOf({ ...minimal, servers: { web: { hosts: [] } } })).toBe("servers.web: no servers specified for the web primary role");
    expect(errorsOf({ ...minimal, primary_role: "api" })).toBe("primary_role: the primary role api isn't defined (roles: web)");
    expect(errorsOf({ ...minimal, servers: { workers: ["h"] } })).toBe("servers: the primary role web isn't defined (roles: workers)");
    expect(errorsOf({ ...minimal, servers: { web: ["h"], jobs: { hosts: [] } } })).toBe("servers.jobs: no servers specified for the jobs role (allow_empty_roles: true skips it)");
    expect(normalizeKamalConfig({ ...minimal, servers: { web: ["h"], jobs: { hosts: [] } }, allow_empty_roles: true }).warnings).toEqual(["servers.jobs: has no hosts; skipped (allow_empty_roles)"]);
    expect(errorsOf({ ...minimal, registry: { server: "ghcr.io", username: "bot" } })).toBe("registry.password: is required (only a localhost registry may have no credentials)");
    expect(errorsOf({ ...minimal, servers: { "we b": ["h"] }, primary_role: "we b" })).toBe("servers.we b: role names may contain only letters, digits, '_', '.', '-'");
    // A host tag without env.tags adds nothing, as in Kamal.
    expect(normalizeKamalConfig({ ...minimal, servers: { web: { hosts: [{ h1: "missing" }] } } }).roles[0].hosts).toEqual([{ address: "h1", tags: ["missing"], env: { clear: {}, secret: [] } }]);
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i" } } })).toBe("accessories.db: specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`");
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", host: "a", hosts: ["b"] } } })).toBe("accessories.db: specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`");
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", roles: ["api"] } } })).toBe(
      "accessories.db.roles: names no role with hosts: api\naccessories.db.roles: names no host",
    );
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", host: "h", files: ["missing.cnf:/etc/my.cnf"] } } })).toMatch(
      /^accessories\.db\.files\.0: missing\.cnf does not exist \(relative to .+\)$/,
    );
    // net-ssh's Proxy::Command: passed on, run on this machine with %h/%p/%r substituted.
    expect(normalizeKamalConfig({ ...minimal, ssh: { proxy_command: "cloudflared access ssh --hostname %h" } }).ssh.proxyCommand).toBe("cloudflared access ssh --hostname %h");
    expect(errorsOf({ ...minimal, proxy: { app_port: 80 }, traefik: { args: {} }, healthcheck: { path: "/up" } })).toBe(
      "traefik: unknown key in Kamal 2 (Kamal 2 runs kamal-proxy: use proxy)\nhealthcheck: unknown key in Kamal 2 (Kamal 2 health checks are proxy.healthcheck)",
    );
    expect(errorsOf({ ...minimal, accessories: { db: { image: "i", host: "h", registry: { server: "x" } } } })).toBe(
      "accessories.db.registry.username: is required (only a localhost registry may have no credentials)\naccessories.db.registry.password: is required (only a localhost registry may have no credentials)",
    );
  });

  it("pulls an accessory from its own registry (Kamal 2): the server goes in front of its image", () => {
    const c = normalizeKamalConfig({
      ...minimal,
      accessories: { db: { image: "acme/db:17", host: "h", registry: { server: "ghcr.io", username: "bot", password: ["GHCR_TOKEN"] } }, cache: { image: "redis:7", host: "h" } },
    });
    expect(c.accessories.map((a) => [a.image, a.registry])).toEqual([
      ["ghcr.io/acme/db:17", { server: "ghcr.io", username: { value: "bot" }, password: { secret: "GHCR_TOKEN" } }],
      ["redis:7", undefined],
    ]);
    expect(c.secretNames).toContain("GHCR_TOKEN");
  });

  it("renders ERB with Ruby as Kamal does: conditionals, %x(), backticks, Ruby expressions, KAMAL_DESTINATION, dotenv", () => {
    const dir = app({
      "config/deploy.yml": [
        "service: hey",
        "image: acme/hey",
        "servers:",
        "  web:",
        "<% if ENV['KAMAL_DESTINATION'] == 'staging' -%>",
        "    - 10.0.0.2",
        "<% else -%>",
        "    - 10.0.0.1",
        "<% end -%>",
        "env:",
        "  clear:",
        "    SUM: <%= 1 + 1 %>",
        "    GIT: <%= %x(echo abc).strip %>",
        "    FALLBACK: <%= ENV['NOPE'] || `echo from-shell`.strip %>",
        "    ROOT: <%= File.basename(Dir.pwd) %>",
        "<% require 'dotenv'; Dotenv.load('.env') %>",
        "    FROM_DOTENV: <%= ENV['FROM_FILE'] %>",
      ].join("\n"),
      "config/deploy.staging.yml": "env:\n  clear:\n    STAGE: <%= ENV.fetch('KAMAL_DESTINATION') %>\n",
      ".env": "FROM_FILE='quoted value'\n",
    });
    const c = loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), destination: "staging", env: { PATH: process.env.PATH }, erb: "ruby" });
    expect(c.roles[0].hosts.map((h) => h.address)).toEqual(["10.0.0.2"]);
    expect(c.env.clear).toEqual({ SUM: "2", GIT: "abc", FALLBACK: "from-shell", ROOT: path.basename(dir), FROM_DOTENV: "quoted value", STAGE: "staging" });
    expect(loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), env: { PATH: process.env.PATH }, erb: "ruby" }).roles[0].hosts[0].address).toBe("10.0.0.1");
    const bad = app({ "config/deploy.yml": "service: hey\nimage: <%= ENV.fetch('SECRET_IMAGE_TOKEN') %>\nservers: [a]\n" });
    expect(() => loadKamalConfig({ file: path.join(bad, "config/deploy.yml"), env: {}, erb: "ruby" })).toThrow("deploy.yml:2: Ruby's ERB raised KeyError rendering the template");
  });

  it("Kamal 1: .env (and .env.<destination> over it) is in ENV while deploy.yml renders, as Kamal 1's CLI loaded it", () => {
    const dir = app({
      "config/deploy.yml": "service: hey\nimage: acme/hey\nservers:\n  - <%= ENV['WEB_HOST'] %>\ntraefik:\n  args:\n    log.level: <%= ENV.fetch('LOG_LEVEL', 'INFO') %>\n",
      ".env": "WEB_HOST=10.0.0.7\nLOG_LEVEL=$(echo DEBUG)\nUNUSED=$(touch unused-ran)\n",
      ".env.staging": "WEB_HOST=10.0.0.8\n",
    });
    for (const erb of ["ruby", "builtin"] as const) {
      const c = loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), env: { PATH: process.env.PATH }, erb });
      expect([c.kamal, c.roles[0].hosts[0].address, c.traefik?.args["log.level"]]).toEqual([1, "10.0.0.7", "DEBUG"]);
      const staging = app({ "config/deploy.yml": readFileSync(path.join(dir, "config/deploy.yml"), "utf8"), "config/deploy.staging.yml": "env:\n  clear:\n    A: 1\n", ".env": "WEB_HOST=10.0.0.7\n", ".env.staging": "WEB_HOST=10.0.0.8\n" });
      expect(loadKamalConfig({ file: path.join(staging, "config/deploy.yml"), destination: "staging", env: { PATH: process.env.PATH }, erb }).roles[0].hosts[0].address).toBe("10.0.0.8");
    }
    expect(readdirSync(dir)).not.toContain("unused-ran");
    // The environment wins over the file; a Kamal 2 project's .env is not read.
    expect(loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), env: { PATH: process.env.PATH, WEB_HOST: "10.9.9.9" } }).roles[0].hosts[0].address).toBe("10.9.9.9");
    const k2 = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers:\n  - <%= ENV.fetch('WEB_HOST', 'h') %>\n", ".env": "WEB_HOST=10.0.0.7\n", ".kamal/secrets": "A=1\n" });
    expect(loadKamalConfig({ file: path.join(k2, "config/deploy.yml"), env: { PATH: process.env.PATH } }).roles[0].hosts[0].address).toBe("h");
  });

  it("reports a missing destination file and unsupported ERB by file and line", () => {
    const dir = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers: [a]\nenv:\n  clear:\n    V: <%= `git rev-parse HEAD` %>\n" });
    expect(() => loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), env: {}, erb: "builtin" })).toThrow(
      "deploy.yml:6: ERB that runs a shell command is not run without Ruby unless allowed (KamalApp's allowShellInErb): install Ruby to render it as Kamal does, or set the value through ENV",
    );
    const ok = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers: [a]\n" });
    expect(() => loadKamalConfig({ file: path.join(ok, "config/deploy.yml"), destination: "prod" })).toThrow(
      "destination: deploy.prod.yml does not exist next to deploy.yml",
    );
  });
});

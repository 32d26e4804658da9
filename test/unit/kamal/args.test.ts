/**
 * deploy.yml to the components' arguments (components/kamalArgs.ts), on a real Kamal 2 config
 * (cyfronet/mltop, test/fixtures/kamal-configs/10-cyfronet-mltop.yml): each component's args
 * asserted whole, with secrets named where they are used and hosts as deploy.yml names them.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadKamalConfig } from "../../../kamal/config";
import { accessoryArgs, imageArgs, serviceArgs, traefikArgs, type KamalContext } from "../../../components/kamalArgs";
import { app } from "./fixtures";

const deployYml = readFileSync(path.join(__dirname, "../../fixtures/kamal-configs/10-cyfronet-mltop.yml"), "utf8");

function loaded() {
  const dir = app({ "config/deploy.yml": deployYml, "db/staging.sql": "CREATE TABLE t (id int);\n" });
  const cfg = loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), erb: "builtin" });
  const cx: KamalContext = {
    secret: (name, at) => `secret ${name} (${at})`,
    host: (address, env) => ({ name: address, address, ...(env ? { env: { clear: env.clear, secret: Object.fromEntries(env.secret.map((s) => [s, `secret ${s}`])) } } : {}) }),
    ssh: { user: "ubuntu", knownHostsPath: "/kh" },
    credentials: (r) => ({ server: r.server, username: JSON.stringify(r.username), password: JSON.stringify(r.password) }),
    fileContent: (f) => `content of ${f.source}`,
  };
  return { cfg, cx, dir };
}

const host = { name: "192.168.1.11", address: "192.168.1.11" };
const env = { clear: { DB_HOST: "192.168.1.8", RAILS_ENV: "staging" }, secret: { RAILS_MASTER_KEY: "secret RAILS_MASTER_KEY" } };
const ssh = { user: "ubuntu", knownHostsPath: "/kh" };
const registry = { server: "docker.io", username: '{"secret":"KAMAL_REGISTRY_USERNAME"}', password: '{"secret":"KAMAL_REGISTRY_PASSWORD"}' };

describe("deploy.yml as the components' arguments", () => {
  it("maps the service, its roles and their proxy", () => {
    const { cfg, cx } = loaded();
    expect(serviceArgs(cfg, cx, { image: cfg.image, version: "abc1234" })).toEqual({
      service: "mltop",
      image: "piotrrcyfro/speechm",
      version: "abc1234",
      destination: undefined,
      registry,
      ssh,
      roles: {
        web: {
          hosts: [{ ...host, env }],
          assetPath: undefined,
          cmd: undefined,
          labels: {},
          options: { network: "kamal" },
          traefik: true,
          appPort: 80,
          healthcheck: { path: "/up", port: 80, interval: 1, timeout: 5, deadline: 30 },
          logging: { driver: "json-file" },
          stopWaitTime: undefined,
          proxy: { hosts: ["speechm-dev.cloud.cyfronet.pl"], ssl: true, responseTimeout: 30, forwardHeaders: false },
        },
        job: {
          hosts: [{ ...host, env }],
          assetPath: undefined,
          cmd: "bin/jobs",
          labels: {},
          options: { network: "kamal" },
          traefik: false,
          appPort: 80,
          healthcheck: false,
          logging: { driver: "json-file" },
          stopWaitTime: undefined,
          proxy: undefined,
        },
      },
      volumes: [],
      stopWaitTime: undefined,
      retainContainers: undefined,
      primaryRole: "web",
      bootLimit: undefined,
      bootWait: undefined,
      parallelRoles: false,
      readinessDelay: 7,
      maintenancePage: undefined,
    });
  });

  it("maps the proxy, the accessory and the builder", () => {
    const { cfg, cx, dir } = loaded();
    expect(traefikArgs(cfg, cx, { acme: { email: "ops@example.com" } })).toEqual({
      hosts: [host],
      ssh,
      image: "traefik:v3.6",
      registry: undefined,
      hostPort: 80,
      args: {},
      labels: {},
      options: {},
      env: { clear: {}, secret: {} },
      networks: ["kamal"],
      tls: { acme: { email: "ops@example.com" } },
      forwardedHeaders: undefined,
      lockService: "mltop",
      destination: undefined,
    });
    expect(accessoryArgs(cfg, cfg.accessories[0], cx, true)).toEqual({
      hold: true,
      service: "mltop",
      destination: undefined,
      name: "db",
      containerName: "mltop-db",
      image: "postgres:17.6",
      hosts: [{ name: "192.168.1.8", address: "192.168.1.8" }],
      ssh,
      registry: undefined,
      port: "5432:5432",
      cmd: undefined,
      env: { clear: { POSTGRES_USER: "postgres", POSTGRES_DB: "mltop_production" }, secret: { POSTGRES_PASSWORD: "secret POSTGRES_PASSWORD (env.secret)" } },
      files: [{ target: "/docker-entrypoint-initdb.d/setup.sql", content: "content of db/staging.sql", mode: "755" }],
      directories: ["data:/var/lib/postgresql/data"],
      volumes: [],
      options: { network: "kamal" },
      labels: {},
      proxy: undefined,
    });
    expect(imageArgs(cfg, cx, { version: "abc1234", appRoot: dir })).toEqual({
      repository: "piotrrcyfro/speechm",
      version: "abc1234",
      service: "mltop",
      destination: undefined,
      appRoot: dir,
      context: undefined,
      dockerfile: "Dockerfile",
      target: undefined,
      args: {},
      secrets: {},
      ssh: undefined,
      platforms: ["linux/amd64"],
      driver: "docker-container",
      remote: undefined,
      local: true,
      cache: undefined,
      provenance: undefined,
      sbom: undefined,
      registry,
    });
  });
});

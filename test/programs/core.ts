/**
 * The core deployment the integration tests drive: Traefik on app1 and app2, a web role on
 * both, a worker role on app1, an accessory on db1 that the app reaches.
 * Config: version, secretToken (secret), deadline, dbConfig.
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { appImage, host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const app1 = host("app1");
const app2 = host("app2");
const db1 = host("db1");

const traefik = new kamal.Traefik("traefik", {
  hosts: [app1, app2],
  ssh: ssh(),
  image: sandbox.images.traefik,
  registry,
  args: { accesslog: false, "log.level": cfg.get("traefikLogLevel") ?? "INFO" },
});

const db = new kamal.Accessory("db", {
  service: "kpapp",
  image: sandbox.images.app.v1,
  hosts: [db1],
  ssh: ssh(),
  registry,
  port: "9000:80",
  env: { clear: { TESTAPP_DATA_DIR: "/data" }, secret: { DB_PASSWORD: cfg.requireSecret("dbPassword") } },
  directories: ["data:/data"],
  files: [{ target: "/config/db.conf", content: cfg.get("dbConfig") ?? "mode=initial\n" }],
});

const app = new kamal.Service("kpapp", {
  image: appImage,
  version: cfg.require("version"),
  registry,
  ssh: ssh(),
  env: {
    clear: {
      TESTAPP_UPSTREAM: `http://${db1.address}:9000`,
      TESTAPP_ECHO_ENV: "SECRET_TOKEN",
      ...(cfg.get("leakEnv") ? { TESTAPP_LOG_ENV: cfg.get("leakEnv")! } : {}),
    },
    secret: { SECRET_TOKEN: cfg.requireSecret("secretToken") },
  },
  healthcheck: { cmd: "/app probe http://127.0.0.1/up", interval: 1, deadline: cfg.getNumber("deadline") ?? 30 },
  stopWaitTime: 10,
  retainContainers: 3,
  roles: {
    web: { hosts: [app1, app2] },
    workers: { hosts: [app1], env: { clear: { PORT: "8081" } } },
  },
}, { dependsOn: [traefik, db] });

export const containers = app.containers;
export const webVersions = pulumi
  .all([app.resources.web.app1.runningVersion, app.resources.web.app2.runningVersion])
  .apply(([a, b]) => ({ app1: a, app2: b }));
export const pulled = app.resources.web.app1.pulled;
export const dbContainerId = db.resources.db1.containerId;

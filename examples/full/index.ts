/**
 * Web on two hosts behind Traefik, a worker, a database-like accessory on a third host,
 * secret env from Pulumi config, Traefik args, rolling one host at a time.
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";

const config = new pulumi.Config();
const [web1, web2, db] = config.requireObject<string[]>("hosts");
const ssh: kamal.SshArgs = {
  user: config.get("sshUser") ?? "root",
  privateKey: config.requireSecret("sshPrivateKey"),
  knownHosts: config.require("knownHosts"),
};
const registry = {
  server: config.require("registryServer"),
  username: config.require("registryUsername"),
  password: config.requireSecret("registryPassword"),
};
const image = config.require("image");

const traefik = new kamal.Traefik("traefik", {
  hosts: [web1, web2],
  ssh,
  image: config.require("traefikImage"),
  registry,
  args: { accesslog: true, "accesslog.format": "json", "log.level": "WARN" },
});

// A key-value store standing in for a database: its data lives in ~/hello-store/data.
const store = new kamal.Accessory("store", {
  service: "hello",
  image: `${image}:${config.get("storeVersion") ?? "v1"}`,
  hosts: [db],
  ssh,
  registry,
  port: "9000:80",
  env: { clear: { TESTAPP_DATA_DIR: "/data" } },
  directories: ["data:/data"],
});

const app = new kamal.Service("hello", {
  image,
  version: config.require("version"),
  registry,
  ssh,
  env: {
    clear: { TESTAPP_UPSTREAM: `http://${db}:9000`, TESTAPP_ECHO_ENV: "API_TOKEN" },
    secret: { API_TOKEN: config.requireSecret("apiToken") },
  },
  healthcheck: { path: "/up", cmd: config.get("healthcheckCmd"), deadline: 30 },
  roles: {
    web: { hosts: [web1, web2] },
    workers: { hosts: [web2], cmd: ["/app"], env: { clear: { PORT: "8081" } } },
  },
  bootLimit: 1,
  stopWaitTime: 10,
  retainContainers: 3,
}, { dependsOn: [traefik, store] });

export const urls = [web1, web2].map((h) => `http://${h}/`);
export const containers = app.containers;
export const storeData = store.resources[db].dataDir;

/**
 * examples/kamal/config/deploy.yml written with the components directly: the test deploys
 * both and compares the containers they make (names, images, labels, env, mounts, health).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";

const config = new pulumi.Config();
const ssh: kamal.SshArgs = { privateKey: config.requireSecret("sshPrivateKey"), knownHosts: config.require("knownHosts") };
const registry = { server: "10.213.0.2:5000", username: "kp-deployer", password: config.requireSecret("KAMAL_REGISTRY_PASSWORD") };
const [app1, app2, db1] = ["10.213.0.11", "10.213.0.12", "10.213.0.13"];

const traefik = new kamal.Traefik("traefik", {
  hosts: [app1, app2],
  ssh,
  image: config.require("traefikImage"),
  registry,
  args: { accesslog: true, "log.level": "WARN" },
});

const store = new kamal.Accessory("store", {
  service: "hello",
  image: "10.213.0.2:5000/kp/testapp:v1",
  hosts: [db1],
  ssh,
  registry,
  port: "9000:80",
  env: { clear: { TESTAPP_DATA_DIR: "/data" }, secret: { STORE_PASSWORD: config.requireSecret("STORE_PASSWORD") } },
  files: [{ target: "/etc/store.conf", content: readFileSync(path.join(__dirname, "../../examples/kamal/config/store.conf"), "utf8") }],
  directories: ["data:/data"],
});

new kamal.Service("hello", {
  image: "10.213.0.2:5000/kp/testapp",
  version: config.require("version"),
  registry,
  ssh,
  env: {
    clear: { TESTAPP_ECHO_ENV: "API_TOKEN", TESTAPP_UPSTREAM: "http://10.213.0.13:9000" },
    secret: { API_TOKEN: config.requireSecret("API_TOKEN") },
  },
  healthcheck: { cmd: "/app probe http://127.0.0.1/up", port: 80, interval: 1, deadline: 28 },
  stopWaitTime: 10,
  retainContainers: 3,
  roles: {
    web: {
      hosts: [app1, { name: app2, address: app2, env: { clear: { CANARY: "true" } } }],
      labels: { "example.com/team": "web" },
    },
    workers: { hosts: [app2], cmd: "/app", env: { clear: { PORT: "8081" } } },
  },
}, { dependsOn: [traefik, store] });

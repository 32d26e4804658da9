/**
 * What `pulumi-kamal` commands act on (test/integration/cli.test.ts): a service "ops"
 * (destination "staging") with a web role behind Traefik on app1 and app2 and a worker on
 * app1, its secret env in the role's env file; an accessory "store" on app2.
 *
 * Config: version; lockWait (seconds). Secret: opsSecret.
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { appImage, host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const app1 = host("app1");
const app2 = host("app2");

const traefik = new kamal.Traefik("traefik", {
  hosts: [app1, app2],
  ssh: ssh(),
  image: sandbox.images.traefik,
  registry,
  args: { accesslog: false, "log.level": "ERROR" },
});

new kamal.Accessory("store", {
  service: "ops",
  image: sandbox.images.app.v1,
  hosts: [app2],
  ssh: ssh(),
  registry,
  env: { clear: { TESTAPP_DATA_DIR: "/data" } },
  directories: ["data:/data"],
});

new kamal.Service("ops", {
  image: appImage,
  version: cfg.require("version"),
  destination: "staging",
  registry,
  ssh: ssh(),
  env: { clear: { OPS_CLEAR: "visible" }, secret: { OPS_SECRET: cfg.requireSecret("opsSecret") } },
  healthcheck: { path: "/up", interval: 1 },
  stopWaitTime: 2,
  lockWait: cfg.getNumber("lockWait"),
  roles: {
    web: { hosts: [app1, app2] },
    workers: { hosts: [app1], cmd: ["/app"], env: { clear: { PORT: "8081" } } },
  },
}, { dependsOn: [traefik] });

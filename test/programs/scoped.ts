/**
 * One service deployed as several stacks on the same hosts: production (no destination)
 * and staging (a destination with its own host name), Traefik in an infrastructure stack
 * of its own. Every secret is given as a plain string, as a careless program would: the
 * components must still keep them out of the state.
 *
 * Config: infra (Traefik only), service, role, destination, routeHost, version, retain,
 * accessory (an accessory's name), accessoryMode, leakEnv, interval, spellDefaults (writes
 * out default values), labelRouting (a user Traefik label: Kamal 1's label routing). The token comes from the file
 * `<stack>.token` in the project (as from a secrets file: never Pulumi config).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { appImage, host, sandbox } from "./sandbox";

const cfg = new pulumi.Config();
const app1 = host("app1");
const app2 = host("app2");
const keyPath = sandbox.hosts[0].privateKeyPath;
const ssh: kamal.SshArgs = {
  user: "root",
  privateKey: readFileSync(keyPath, "utf8"),
  knownHostsPath: sandbox.hosts[0].knownHostsPath,
  connectTimeout: 5,
};
const registry = { server: sandbox.registry.address, username: sandbox.registry.username, password: sandbox.registry.password };

export let versions: pulumi.Output<string[]> | undefined;
export let pulled: pulumi.Output<boolean[]> | undefined;

if (cfg.getBoolean("infra")) {
  new kamal.Traefik("traefik", { hosts: [app1, app2], ssh, image: sandbox.images.traefik, registry, args: { accesslog: false } });
} else {
  const token = readFileSync(path.join(process.cwd(), `${pulumi.getStack()}.token`), "utf8").trim();
  const service = cfg.get("service") ?? "kpiso";
  const role = cfg.get("role") ?? "web";
  const destination = cfg.get("destination");
  const routeHost = cfg.get("routeHost");
  const accessory = cfg.get("accessory");
  // The component's name does not follow the destination: renaming the destination is an
  // update of the same resources, which retires the old scope's containers.
  const app = new kamal.Service(service, {
    service,
    destination,
    image: appImage,
    version: cfg.require("version"),
    registry,
    ssh,
    proxy: routeHost ? { host: routeHost } : undefined,
    // A Traefik label of the user's own keeps Kamal 1's label routing (cord and all) for
    // this role, beside roles routed by route files on the same Traefik.
    labels: cfg.getBoolean("labelRouting") ? { "traefik.http.middlewares.kpiso-mark.headers.customresponseheaders.X-Kpiso": "1" } : undefined,
    env: {
      clear: { TESTAPP_ECHO_ENV: "SECRET_TOKEN", ...(cfg.get("leakEnv") ? { TESTAPP_LOG_ENV: cfg.get("leakEnv")! } : {}) },
      secret: { SECRET_TOKEN: token },
    },
    healthcheck: { cmd: "/app probe http://127.0.0.1/up", interval: cfg.get("interval") ?? 1, deadline: 8, ...(cfg.getBoolean("spellDefaults") ? { retries: 3, path: "/up" } : {}) },
    stopWaitTime: 5,
    ...(cfg.getBoolean("spellDefaults") ? { appPort: 80, labels: {}, volumes: [] } : {}),
    retainContainers: cfg.getNumber("retain") ?? 2,
    roles: { [role]: { hosts: [app1, app2], traefik: true } },
  });
  if (accessory) {
    new kamal.Accessory(accessory, {
      service: "kpiso-production",
      image: sandbox.images.app.v1,
      hosts: [host("db1")],
      ssh,
      registry,
      env: {
        clear: { TESTAPP_MODE: cfg.get("accessoryMode") ?? "healthy", TESTAPP_LOG_ENV: "DB_PASSWORD" },
        secret: { DB_PASSWORD: token },
      },
      files: [{ target: "/config/db.conf", content: `password=${token}\n` }],
      directories: ["data:/data"],
    });
  }
  versions = pulumi.all(Object.values(app.resources[role]).map((r) => r.runningVersion));
  pulled = pulumi.all(Object.values(app.resources[role]).map((r) => r.pulled));
}

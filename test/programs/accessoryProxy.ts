/**
 * An accessory behind the host's Traefik (Kamal 2's accessory `proxy`), beside nothing else:
 * Traefik on app1, the test app as accessory "panel". Config: proxyHost (the host name routed
 * to it; unset: not behind the proxy), healthPath (its proxy health check's path), env (an
 * env value: a change reboots it), runDirectory (Kamal's run_directory of both).
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const app1 = host("app1");
const proxyHost = cfg.get("proxyHost");
const healthPath = cfg.get("healthPath");

const runDirectory = cfg.get("runDirectory");
const traefik = new kamal.Traefik("traefik", { hosts: [app1], ssh: ssh(), image: sandbox.images.traefik, registry, runDirectory });
export const accessory = new kamal.Accessory("panel", {
  service: "kpacc",
  hosts: [app1],
  ssh: ssh(),
  registry,
  image: sandbox.images.app.v1,
  env: { clear: { PANEL_MODE: cfg.get("env") ?? "one" } },
  stopWaitTime: 2,
  runDirectory,
  proxy: proxyHost ? { hosts: [proxyHost], appPort: 80, ...(healthPath ? { healthcheck: { path: healthPath, deadline: 3 } } : {}) } : undefined,
}, { dependsOn: [traefik] });

/**
 * An app built from its sources in the same `pulumi up` that deploys it: an Image from a git
 * repository (config appRoot), pushed to the sandbox registry (or a local registry), and a
 * Service that runs exactly its digest on app1 and app2 behind Traefik.
 * Config: appRoot, buildSecret (secret), repository?, context?, remoteBuilder? (a host name),
 * platforms?, withTraefik? (default true).
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const app1 = host("app1");
const app2 = host("app2");
const repository = cfg.get("repository") ?? `${sandbox.registry.address}/kp/built`;
const local = repository.startsWith("localhost:");
const remote = cfg.get("remoteBuilder");

const image = new kamal.Image("built", {
  repository,
  service: "kpbuilt",
  appRoot: cfg.require("appRoot"),
  context: cfg.get("context"),
  version: cfg.get("version"),
  args: { BASE_IMAGE: sandbox.images.app.v1 },
  secrets: { BUILD_TOKEN: cfg.requireSecret("buildSecret") },
  platforms: cfg.getObject<string[]>("platforms"),
  registry: local ? undefined : registry,
  remote: remote ? { host: host(remote), ssh: ssh() } : undefined,
  local: remote ? false : undefined,
});

const traefik = cfg.getBoolean("withTraefik") === false
  ? undefined
  : new kamal.Traefik("traefik", { hosts: [app1, app2], ssh: ssh(), image: sandbox.images.traefik, registry });

const app = new kamal.Service("kpbuilt", {
  image,
  registry: local ? undefined : registry,
  ssh: ssh(),
  healthcheck: { cmd: "/app probe http://127.0.0.1/up", interval: 1, deadline: 30 },
  stopWaitTime: 5,
  roles: { web: { hosts: [app1, app2] } },
}, { dependsOn: traefik ? [traefik] : [] });

export const version = image.version;
export const digest = image.digest;
export const containers = app.containers;

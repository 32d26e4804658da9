/**
 * The benchmark's deployment: Traefik and a web role on the configured hosts.
 * Config: hosts (names), version, token (secret: an env-only change), bootLimit, deadline,
 * healthyAfter (seconds before the app answers its health check), lockWait, traefik (false:
 * route through the Traefik another stack runs on the hosts), traefikHosts (default: hosts),
 * sslHost with certFile and keyFile (HTTPS for that host name with that certificate),
 * connectTimeout (seconds for an SSH handshake: a large fleet on two cores needs more).
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { appImage, host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const hosts = cfg.requireObject<string[]>("hosts").map(host);
const connectTimeout = cfg.getNumber("connectTimeout");
const sshArgs = () => ssh(connectTimeout ? { connectTimeout } : {});

const traefik = cfg.getBoolean("traefik") === false ? undefined : new kamal.Traefik("traefik", {
  hosts: cfg.getObject<string[]>("traefikHosts")?.map(host) ?? hosts,
  ssh: sshArgs(),
  image: sandbox.images.traefik,
  registry,
  args: cfg.getObject<Record<string, string | boolean>>("traefikArgs") ?? {},
  tls: cfg.get("sslHost") ? {} : undefined,
});
const sslHost = cfg.get("sslHost");
const app = new kamal.Service("bench", {
  image: appImage,
  version: cfg.require("version"),
  registry,
  ssh: sshArgs(),
  env: {
    clear: cfg.get("healthyAfter") ? { TESTAPP_HEALTHY_AFTER: cfg.get("healthyAfter")! } : {},
    secret: { TOKEN: cfg.requireSecret("token") },
  },
  healthcheck: { cmd: "/app probe http://127.0.0.1/up", deadline: cfg.getNumber("deadline") ?? 30 },
  stopWaitTime: 10,
  retainContainers: 3,
  bootLimit: cfg.getNumber("bootLimit"),
  lockWait: cfg.getNumber("lockWait"),
  proxy: sslHost
    ? { host: sslHost, ssl: { certificatePem: readFileSync(cfg.require("certFile"), "utf8"), privateKeyPem: readFileSync(cfg.require("keyFile"), "utf8") } }
    : undefined,
  roles: { web: { hosts } },
}, { dependsOn: traefik ? [traefik] : [] });

export const pulled = pulumi.all(Object.values(app.resources.web).map((r) => r.pulled));
export const versions = pulumi.all(Object.values(app.resources.web).map((r) => r.runningVersion));

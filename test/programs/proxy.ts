/**
 * Apps sharing one Traefik per host, each in its own stack, Traefik in an infrastructure
 * stack of its own (the ownership a team would use: the infra stack owns the proxy, each app
 * stack owns its service and only names host names).
 *
 * Config of the infra stack: infra=true, traefikImage, logLevel, trustForwarded (bool); its
 * ACME CA is the sandbox's Pebble.
 * Config of an app stack: service, routeHost, hosts ("app1" or "app1,app2"), version,
 * ssl ("acme" | "own": a certificate from the files <stack>.cert.pem/<stack>.key.pem),
 * proxy (JSON of more route settings), maintenance (JSON, or true), healthcheck (JSON over
 * the defaults), env (JSON of clear env).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { appImage, host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const json = <T>(key: string): T | undefined => (cfg.get(key) ? (JSON.parse(cfg.get(key)!) as T) : undefined);

export let versions: pulumi.Output<Record<string, string>> | undefined;
export let containerIds: pulumi.Output<Record<string, string>> | undefined;

if (cfg.getBoolean("infra")) {
  new kamal.Traefik("traefik", {
    hosts: [host("app1"), host("app2")],
    ssh: ssh(),
    image: cfg.get("traefikImage") ?? sandbox.images.traefik,
    registry,
    args: { accesslog: false, "log.level": cfg.get("logLevel") ?? "INFO" },
    tls: {
      acme: {
        email: "ops@kp.test",
        caServer: sandbox.acme.directory,
        // Pebble's own HTTPS certificate is the sandbox's: Traefik's ACME client must trust it.
        caCertificates: readFileSync(sandbox.acme.caCertificatesPath, "utf8"),
      },
    },
    forwardedHeaders: cfg.getBoolean("trustForwarded") ? true : undefined,
  });
} else {
  const service = cfg.require("service");
  const ssl = cfg.get("ssl");
  const own = (ext: string) => readFileSync(path.join(process.cwd(), `${pulumi.getStack()}.${ext}.pem`), "utf8");
  const hosts = (cfg.get("hosts") ?? "app1,app2").split(",").map(host);
  const maintenance = cfg.get("maintenance") === "true" ? true : json<kamal.MaintenanceArgs>("maintenance");
  const app = new kamal.Service(service, {
    image: appImage,
    version: cfg.require("version"),
    registry,
    ssh: ssh(),
    env: { clear: json<Record<string, string>>("env") ?? {} },
    proxy: {
      host: cfg.require("routeHost"),
      ...(ssl === "acme" ? { ssl: true } : ssl === "own" ? { ssl: { certificatePem: own("cert"), privateKeyPem: own("key") } } : {}),
      ...(json<kamal.ProxyRouteArgs>("proxy") ?? {}),
    },
    maintenance,
    errorPages: json<Record<string, string>>("errorPages"),
    healthcheck: { path: "/up", interval: 1, deadline: 8, ...(json<kamal.HealthcheckArgs>("healthcheck") ?? {}) },
    stopWaitTime: 5,
    retainContainers: 2,
    roles: { web: { hosts } },
  });
  versions = pulumi.output(Object.fromEntries(Object.entries(app.resources.web).map(([h, r]) => [h, r.runningVersion])));
  containerIds = pulumi.output(Object.fromEntries(Object.entries(app.resources.web).map(([h, r]) => [h, r.containerId])));
}

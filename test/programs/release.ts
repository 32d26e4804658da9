/**
 * Release safety: a service "rel" (destination "prod") with a release command, a watch
 * window, a canary and an exclusive worker role, behind Traefik on app1 and app2.
 *
 * Config: version; env (JSON of clear env for the web role, e.g. TESTAPP_FAIL_AFTER);
 * releaseCmd (JSON argv, or unset for none); watch; canaryHosts, canaryWatch; workerEnv
 * (JSON); stopWaitTime; threeHosts (web on app1-app3 too), bootLimit, onFailure, failHost
 * (that host's web container is unhealthy), deadline; beforeDeploy, afterDeploy (local
 * commands); assetPath. Secret: releaseSecret (in the role's
 * secret env file).
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { appImage, host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const json = <T>(key: string): T | undefined => (cfg.get(key) ? (JSON.parse(cfg.get(key)!) as T) : undefined);
const app1 = host("app1");
const app2 = host("app2");
const webHosts = cfg.getBoolean("threeHosts") ? [app1, app2, host("app3")] : [app1, app2];
const failHost = cfg.get("failHost");

const traefik = new kamal.Traefik("traefik", {
  hosts: webHosts,
  ssh: ssh(),
  image: sandbox.images.traefik,
  registry,
  args: { accesslog: false, "log.level": "ERROR" },
});

const releaseCmd = json<string[]>("releaseCmd");
const canaryHosts = cfg.getNumber("canaryHosts");
const app = new kamal.Service("rel", {
  image: appImage,
  version: cfg.require("version"),
  destination: "prod",
  registry,
  ssh: ssh(),
  env: { secret: { RELEASE_SECRET: cfg.requireSecret("releaseSecret") } },
  // The release command and the web containers share the host directory /root/kp-rel.
  volumes: ["/root/kp-rel:/shared"],
  healthcheck: { path: "/up", interval: 1, deadline: cfg.getNumber("deadline") ?? 20 },
  stopWaitTime: cfg.getNumber("stopWaitTime") ?? 5,
  retainContainers: 3,
  watch: cfg.get("watch"),
  canary: canaryHosts ? { hosts: canaryHosts, watch: cfg.get("canaryWatch") } : undefined,
  release: releaseCmd ? { cmd: releaseCmd, timeout: 60 } : undefined,
  bootLimit: cfg.getNumber("bootLimit"),
  onFailure: cfg.get("onFailure") as "stop" | "revert" | undefined,
  hooks: { beforeDeploy: cfg.get("beforeDeploy"), afterDeploy: cfg.get("afterDeploy") },
  assetPath: cfg.get("assetPath"),
  roles: {
    web: { hosts: webHosts.map((h) => (h.name === failHost ? { ...h, env: { clear: { TESTAPP_MODE: "unhealthy" } } } : h)), env: { clear: { TESTAPP_ECHO_ENV: "KAMAL_HOST", ...(json<Record<string, string>>("env") ?? {}) } } },
    workers: { hosts: [app1], exclusive: true, cmd: ["/app"], env: { clear: { PORT: "8081", ...(json<Record<string, string>>("workerEnv") ?? {}) } } },
  },
}, { dependsOn: [traefik] });

export const versions = pulumi.all(Object.fromEntries(Object.entries(app.resources.web).map(([h, r]) => [h, r.runningVersion])));
export const releasedVersion = app.release?.ranVersion;

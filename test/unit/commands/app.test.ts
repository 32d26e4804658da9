/** App containers: their docker run, Kamal 2's env, the release command, assets, scopes, routes, retention. */
import { describe, expect, it } from "vitest";
import { appContainer } from "../../../provider/config/schemas";
import { cleanUpAssets, containerName, extractAssets, healthCommand, runAppContainer, syncAssetVolumes } from "../../../provider/commands/app";
import * as docker from "../../../provider/commands/docker";
import { release } from "../../../provider/config/schemas";
import { releaseContainerName, runRelease } from "../../../provider/commands/release";
import { connection, web } from "./fixtures";

describe("app container commands", () => {
  it("names containers service-role[-destination]-version", () => {
    expect(containerName(web)).toBe("hey-web-abc123");
    expect(containerName({ ...web, destination: "staging" })).toBe("hey-web-staging-abc123");
  });

  it("builds the health command with Kamal's cord", () => {
    expect(healthCommand(web)).toBe("(curl -f http://localhost:3000/up) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)");
    expect(healthCommand({ ...web, traefik: false })).toBe("curl -f http://localhost:3000/up");
    expect(healthCommand({ ...web, healthcheck: { ...web.healthcheck!, cmd: "bin/check --fast" } })).toBe(
      "(bin/check --fast) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)",
    );
    // Kamal 1's healthcheck.cord: another directory in the container, or none at all.
    expect(healthCommand({ ...web, healthcheck: { ...web.healthcheck!, cord: "/cord" } })).toBe("(curl -f http://localhost:3000/up) && (stat /cord/cord > /dev/null || exit 1)");
    expect(healthCommand({ ...web, healthcheck: { ...web.healthcheck!, cord: false } })).toBe("curl -f http://localhost:3000/up");
    expect(runAppContainer({ ...web, healthcheck: { ...web.healthcheck!, cord: "/cord" } }, { name: "hey-web-abc123", cordDir: "/root/.kamal/cords/hey-web-abc123-0a1b2c3d" }).text).toContain(
      " --volume /root/.kamal/cords/hey-web-abc123-0a1b2c3d:/cord ",
    );
  });

  it("builds the whole docker run of a web role", () => {
    expect(
      runAppContainer(web, {
        name: "hey-web-abc123",
        cordDir: "/home/deploy/.kamal/cords/hey-web-abc123-0a1b2c3d",
        envFile: "/home/deploy/.kamal/env/roles/hey-web.env",
      }).text,
    ).toBe(
      "docker run --detach --restart unless-stopped --name hey-web-abc123" +
        " --env KAMAL_CONTAINER_NAME=hey-web-abc123 --env KAMAL_HOST=10.0.0.1 --env KAMAL_VERSION=abc123 --env RAILS_ENV=production --env WEB_CONCURRENCY=2" +
        " --env-file /home/deploy/.kamal/env/roles/hey-web.env" +
        " --volume /home/deploy/.kamal/cords/hey-web-abc123-0a1b2c3d:/tmp/kamal-cord --volume /data/storage:/rails/storage" +
        " --label destination= --label role=web --label service=hey --label team=core --label traefik.enable=true" +
        " --label traefik.http.middlewares.hey-web-retry.retry.attempts=5" +
        " --label traefik.http.middlewares.hey-web-retry.retry.initialinterval=500ms" +
        " --label traefik.http.routers.hey-web.middlewares=hey-web-retry@docker" +
        " --label 'traefik.http.routers.hey-web.rule=PathPrefix(`/`)'" +
        " --label traefik.http.services.hey-web.loadbalancer.server.port=3000" +
        " --label version=abc123" +
        " --health-cmd '(curl -f http://localhost:3000/up) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)'" +
        " --health-interval 1s --health-retries 3" +
        " --log-opt max-size=10m" +
        " --add-host db:10.0.0.3 --init --memory 1g" +
        " registry.example.com/hey:abc123",
    );
  });

  it("builds a worker's docker run with its cmd split like a shell, never interpreted", () => {
    const worker = appContainer.parse({
      hostName: "web-1", connection, service: "hey", role: "workers", image: "hey", version: "v1",
      cmd: "bin/jobs --queues 'default,mail' $HOME; rm -rf /",
    });
    expect(runAppContainer(worker, { name: "hey-workers-v1" }).text).toBe(
      "docker run --detach --restart unless-stopped --name hey-workers-v1" +
        " --env KAMAL_CONTAINER_NAME=hey-workers-v1 --env KAMAL_HOST=10.0.0.1 --env KAMAL_VERSION=v1" +
        " --label destination= --label role=workers --label service=hey --label traefik.enable=false --label version=v1" +
        " --log-opt max-size=10m hey:v1 bin/jobs --queues default,mail '$HOME;' rm -rf /",
    );
  });
});

describe("Kamal 2's container env and the release command", () => {
  it("gives a destination's container KAMAL_DESTINATION; a role's own value wins", () => {
    const worker = appContainer.parse({
      hostName: "web-1", connection, service: "hey", role: "workers", destination: "staging", image: "hey", version: "v1",
      env: { KAMAL_HOST: "web-1.internal" },
    });
    expect(runAppContainer(worker, { name: "hey-workers-staging-v1" }).text).toBe(
      "docker run --detach --restart unless-stopped --name hey-workers-staging-v1" +
        " --env KAMAL_CONTAINER_NAME=hey-workers-staging-v1 --env KAMAL_DESTINATION=staging --env KAMAL_HOST=web-1.internal --env KAMAL_VERSION=v1" +
        " --label destination=staging --label role=workers --label service=hey --label traefik.enable=false --label version=v1" +
        " --log-opt max-size=10m hey:v1",
    );
  });

  it("runs the release command detached in a one-off container of the new image, with the role's env, env file, volumes and options", () => {
    const cfg = release.parse({
      hostName: "web-1", connection, service: "hey", role: "web", destination: "production", image: "registry.example.com/hey", version: "v2",
      cmd: "bin/rails db:migrate", env: { RAILS_ENV: "production" }, envFile: { path: ".kamal/env/roles/hey-web-production.env", hash: "h" },
      volumes: ["/data/storage:/rails/storage"], options: { network: "kamal" },
    });
    expect(releaseContainerName(cfg)).toBe("hey-web-production-release-v2");
    expect(runRelease(cfg, { name: "hey-web-production-release-v2", envFile: "/home/deploy/.kamal/env/roles/hey-web-production.env" }).text).toBe(
      "{ docker network inspect kamal >/dev/null 2>&1 || { i=0; until mkdir /tmp/.kamal-network-kamal.lock 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done;" +
        " docker network inspect kamal >/dev/null 2>&1 || docker network create kamal >/dev/null; r=$?; rmdir /tmp/.kamal-network-kamal.lock 2>/dev/null; [ $r -eq 0 ]; }; } &&" +
        " docker run --detach --name hey-web-production-release-v2" +
        " --env KAMAL_CONTAINER_NAME=hey-web-production-release-v2 --env KAMAL_DESTINATION=production --env KAMAL_HOST=10.0.0.1 --env KAMAL_VERSION=v2 --env RAILS_ENV=production" +
        " --env-file /home/deploy/.kamal/env/roles/hey-web-production.env --volume /data/storage:/rails/storage" +
        " --label destination=production --label kamal.release=v2 --label service=hey" +
        " --log-opt max-size=10m --network kamal registry.example.com/hey:v2 bin/rails db:migrate",
    );
    expect(docker.followLogs("hey-web-production-release-v2").text).toBe("docker logs --follow hey-web-production-release-v2");
    expect(docker.waitContainer("hey-web-production-release-v2").text).toBe("docker wait hey-web-production-release-v2");
    expect(docker.waitContainer("x").policy).toMatchObject({ repeatable: true, deadline: "read" });
  });
});

describe("asset bridging, in Kamal's layout", () => {
  const web = appContainer.parse({
    hostName: "web-1", connection, service: "hey", role: "web", destination: "production", image: "r.example.com/hey", version: "v2",
    traefik: true, healthcheck: { path: "/up" }, assetPath: "/rails/public/assets",
  });
  const base = "/home/deploy/.kamal/apps/hey-production/assets";
  it("extracts the new image's assets through a created container", () => {
    expect(extractAssets(web, "/home/deploy").text).toBe(
      "docker container rm --force hey-web-production-assets >/dev/null 2>&1;" +
        ` mkdir -p ${base}/extracted/web-v2` +
        " && docker container create --name hey-web-production-assets r.example.com/hey:v2 >/dev/null" +
        ` && docker container cp -L hey-web-production-assets:/rails/public/assets/. ${base}/extracted/web-v2` +
        " && docker container rm hey-web-production-assets >/dev/null",
    );
  });
  it("gives the new volume both versions' assets and the previous volume the new ones; then removes the other versions'", () => {
    expect(syncAssetVolumes(web, "/home/deploy", "v1").text).toBe(
      `mkdir -p ${base}/volumes/web-v2 && cp -rT ${base}/extracted/web-v2 ${base}/volumes/web-v2` +
        ` && { cp -rnT ${base}/extracted/web-v1 ${base}/volumes/web-v2 2>/dev/null || true; }` +
        ` && { cp -rnT ${base}/extracted/web-v2 ${base}/volumes/web-v1 2>/dev/null || true; }`,
    );
    expect(syncAssetVolumes(web, "/home/deploy").text).toBe(`mkdir -p ${base}/volumes/web-v2 && cp -rT ${base}/extracted/web-v2 ${base}/volumes/web-v2`);
    expect(cleanUpAssets(web, "/home/deploy").text).toBe(
      `{ find ${base}/extracted -mindepth 1 -maxdepth 1 -name 'web-*' '!' -name web-v2 -exec rm -rf '{}' + 2>/dev/null || true; };` +
        ` { find ${base}/volumes -mindepth 1 -maxdepth 1 -name 'web-*' '!' -name web-v2 -exec rm -rf '{}' + 2>/dev/null || true; }`,
    );
    expect(runAppContainer(web, { name: "hey-web-production-v2", routing: "routes", assetVolume: `${base}/volumes/web-v2` }).text).toContain(
      ` --volume ${base}/volumes/web-v2:/rails/public/assets --label`,
    );
  });
});

describe("scopes and routes", () => {
  it("labels every container with its destination, empty without one, as Kamal does", async () => {
    const { scopeLabels, hostRule, copyKind, labelRoutes, appLabels } = await import("../../../provider/commands/app");
    expect(scopeLabels({ service: "hey", role: "web" })).toEqual({ service: "hey", role: "web", destination: "" });
    expect(scopeLabels({ service: "hey", role: "web", destination: "staging" })).toEqual({ service: "hey", role: "web", destination: "staging" });
    expect(hostRule([])).toBe("PathPrefix(`/`)");
    expect(hostRule(["a.example.com", "*.b.example.com"])).toBe("Host(`a.example.com`) || HostRegexp(`^[^.]+\\.b\\.example\\.com$`)");
    expect(copyKind("hey-web-v1")).toBe("current");
    expect(copyKind("hey-web-v1_replaced_0a1b2c3d")).toBe("replaced");
    expect(copyKind("hey-web-v1_failed_0a1b2c3d")).toBe("failed");
    const staging = appContainer.parse({
      hostName: "web-1", connection, service: "hey", role: "web", destination: "staging", image: "hey", version: "v1",
      traefik: true, healthcheck: {}, routeHosts: ["staging.example.com"],
    });
    expect(labelRoutes(appLabels(staging))).toEqual(["* Host(`staging.example.com`)"]);
  });

  it("lists a service's containers with the labels that decide their scope", async () => {
    const { serviceContainers, scopedContainerLabels } = await import("../../../provider/commands/docker");
    expect(serviceContainers("hey").text).toBe(
      "docker ps --all --filter label=service=hey --format '{{.Names}}\t{{.State}}\t{{.Label \"role\"}}\t{{.Label \"destination\"}}\t{{.Label \"version\"}}'",
    );
    expect(scopedContainerLabels().text).toBe(
      "docker ps --all --quiet --filter label=service | xargs -r docker container inspect --format '{{.Name}}\t{{.State.Status}}\t{{json .Config.Labels}}'",
    );
  });
});

describe("retention by version", () => {
  it("keeps the serving container, `retain` earlier versions and the newest failed one", async () => {
    const { pruneList } = await import("../../../provider/commands/app");
    const c = (name: string, version: string, running = false) => ({ name, version, running });
    // Newest first, as docker ps lists them: v2 serving after six env rotations and two
    // failed deploys of v3; v1 served before v2, v0 before v1.
    const host = [
      c("hey-web-v2", "v2", true),
      c("hey-web-v3_failed_0000000b", "v3"),
      c("hey-web-v3_failed_0000000a", "v3"),
      ...[6, 5, 4, 3, 2, 1].map((i) => c(`hey-web-v2_replaced_0000000${i}`, "v2")),
      c("hey-web-v1", "v1"),
      c("hey-web-v0", "v0"),
    ];
    expect(pruneList(host, "hey-web-v2", "v2", 1)).toEqual([
      "hey-web-v3_failed_0000000a",
      ...[6, 5, 4, 3, 2, 1].map((i) => `hey-web-v2_replaced_0000000${i}`),
      "hey-web-v0",
    ]);
    expect(pruneList(host, "hey-web-v2", "v2", 2)).not.toContain("hey-web-v0");
    // A running container (still serving, or another scope's mistake) is never pruned.
    expect(pruneList([c("hey-web-v2", "v2", true), c("hey-web-v1_replaced_01", "v1", true)], "hey-web-v2", "v2", 1)).toEqual([]);
  });
});

describe("routing by route files", () => {
  it("reads back the servers a route file names", async () => {
    const { routeConfig, routeServers } = await import("../../../provider/commands/proxy");
    const text = routeConfig({ name: "shop-web", rule: "PathPrefix(`/`)", entrypoints: ["http"], servers: ["http://172.17.0.5:80"] });
    expect(routeServers(text, "shop-web")).toEqual(["http://172.17.0.5:80"]);
    expect(routeServers(text, "other")).toBeUndefined();
    expect(routeServers("not json", "shop-web")).toBeUndefined();
  });

  it("writes one scope's router, retry middleware and load balancer as JSON (which Traefik reads as YAML)", async () => {
    const { routeConfig, routeFile } = await import("../../../provider/commands/proxy");
    expect(routeFile("/root/.kamal/proxy/traefik", "hey-web-staging")).toBe("/root/.kamal/proxy/traefik/hey-web-staging.yml");
    expect(JSON.parse(routeConfig({ name: "hey-web", rule: "Host(`hey.example.com`)", entrypoints: ["http"], servers: ["http://172.17.0.5:3000"] }))).toEqual({
      http: {
        routers: { "hey-web": { rule: "Host(`hey.example.com`)", entryPoints: ["http"], service: "hey-web", middlewares: ["hey-web-retry"] } },
        middlewares: { "hey-web-retry": { retry: { attempts: 5, initialInterval: "500ms" } } },
        services: { "hey-web": { loadBalancer: { passHostHeader: true, servers: [{ url: "http://172.17.0.5:3000" }] } } },
      },
    });
  });

  it("runs a routed container without Traefik labels or cord; user Traefik labels keep label routing", async () => {
    const { wantsLabelRouting } = await import("../../../provider/commands/app");
    const web = appContainer.parse({
      hostName: "web-1", connection, service: "hey", role: "web", image: "hey", version: "v1", traefik: true,
      healthcheck: { cmd: "/app probe" },
    });
    expect(runAppContainer(web, { name: "hey-web-v1", routing: "routes" }).text).toBe(
      "docker run --detach --restart unless-stopped --name hey-web-v1" +
        " --env KAMAL_CONTAINER_NAME=hey-web-v1 --env KAMAL_HOST=10.0.0.1 --env KAMAL_VERSION=v1" +
        " --label destination= --label role=web --label service=hey --label traefik.enable=false --label version=v1" +
        " --health-cmd '/app probe' --health-interval 1s --health-retries 3 --log-opt max-size=10m hey:v1",
    );
    // An HTTP health path is probed from outside, through SSH, as Kamal 2's proxy does: no
    // Docker health command, so images without curl work.
    const byPath = { ...web, healthcheck: { ...web.healthcheck!, cmd: undefined, path: "/up", port: 3000 } };
    expect(healthCommand(byPath, "routes")).toBeUndefined();
    expect(runAppContainer(byPath, { name: "hey-web-v1", routing: "routes" }).text).not.toContain("--health-cmd");
    expect(healthCommand(byPath, "labels")).toBe("(curl -f http://localhost:3000/up) && (stat /tmp/kamal-cord/cord > /dev/null || exit 1)");
    expect(wantsLabelRouting(web)).toBe(false);
    expect(wantsLabelRouting({ ...web, labels: { "traefik.http.routers.hey-web.rule": "Host(`x`)" } })).toBe(true);
  });
});

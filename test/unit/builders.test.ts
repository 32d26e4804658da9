import { describe, expect, it } from "vitest";
import { Command, ENGINE_DOWN } from "../../provider/commands/command";
import { homeDirectory } from "../../provider/commands/files";
import { appContainer } from "../../provider/config/schemas";
import { cleanUpAssets, containerName, extractAssets, healthCommand, runAppContainer, syncAssetVolumes } from "../../provider/commands/app";
import { runAccessory } from "../../provider/commands/accessory";
import * as docker from "../../provider/commands/docker";
import * as lock from "../../provider/commands/lock";
import { createTraefik, traefikDirs } from "../../provider/commands/traefik";
import { accessoryContainer, release, traefikContainer } from "../../provider/config/schemas";
import { releaseContainerName, runRelease } from "../../provider/commands/release";
import * as ops from "../../provider/commands/ops";
import * as audit from "../../provider/commands/audit";
import * as boot from "../../provider/commands/bootstrap";

const connection = { host: "10.0.0.1" };

const web = appContainer.parse({
  hostName: "web-1",
  connection,
  service: "hey",
  role: "web",
  image: "registry.example.com/hey",
  version: "abc123",
  env: { RAILS_ENV: "production", WEB_CONCURRENCY: "2" },
  labels: { team: "core" },
  volumes: ["/data/storage:/rails/storage"],
  options: { memory: "1g", "add-host": ["db:10.0.0.3"], init: true },
  traefik: true,
  appPort: 3000,
  healthcheck: { path: "/up", port: 3000 },
  stopWaitTime: "20s",
});

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

describe("docker commands", () => {
  it("finds containers by label, newest first", () => {
    expect(docker.containersWithLabels({ service: "hey", role: "web" }, { all: true, status: "exited" }).text).toBe(
      "docker ps --all --filter label=role=web --filter label=service=hey --filter status=exited --format '{{.Names}}'",
    );
  });
  it("logs in with the password on stdin", () => {
    expect(docker.dockerLogin("ghcr.io", "bot").text).toBe("docker login ghcr.io --username bot --password-stdin");
  });
  it("stops with the stop wait time and reads state, cords and logs", () => {
    expect(docker.stopContainer("hey-web-v1", 20).text).toBe("docker stop --time 20 hey-web-v1");
    expect(docker.containerState("hey-web-v1").text).toBe(
      "docker container inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.RestartCount}}' hey-web-v1",
    );
    expect(docker.cordSource("hey-web-v1").text).toBe(
      `docker container inspect --format '{{range .Mounts}}{{if eq .Destination "/tmp/kamal-cord"}}{{.Source}}{{end}}{{end}}' hey-web-v1`,
    );
    expect(docker.tieCord("/root/.kamal/cords/x").text).toBe("mkdir -p /root/.kamal/cords/x && touch /root/.kamal/cords/x/cord");
    expect(docker.containerLogs("hey-web-v1", 30).text).toBe("docker logs --tail 30 hey-web-v1 2>&1");
    expect(docker.goDuration(0.5)).toBe("500ms");
  });
});

describe("Traefik and accessory commands", () => {
  it("creates Traefik with Kamal's defaults, the API on loopback, user args last", () => {
    const cfg = traefikContainer.parse({
      hostName: "web-1", connection, image: "traefik:v3.6", args: { accesslog: true, "log.level": "ERROR" },
      env: { CF_API_EMAIL: "ops@example.com" }, labels: { "traefik.http.routers.dashboard.rule": "Host(`t.example.com`)" },
    });
    expect(createTraefik(cfg, { name: "traefik_next_a1b2c3", envFile: "/root/.kamal/env/traefik/traefik.env", dirs: traefikDirs("/root") }).text).toBe(
      "docker create --restart unless-stopped --name traefik_next_a1b2c3 --publish 80:80 --publish 127.0.0.1:8080:8080" +
        " --env CF_API_EMAIL=ops@example.com --env-file /root/.kamal/env/traefik/traefik.env" +
        " --volume /var/run/docker.sock:/var/run/docker.sock --volume /root/.kamal/proxy/traefik:/etc/traefik/kamal:ro --volume /root/.kamal/proxy/plugins-local:/plugins-local:ro" +
        " --label 'traefik.http.routers.dashboard.rule=Host(`t.example.com`)' --log-opt max-size=10m traefik:v3.6" +
        " --providers.docker --providers.file.directory=/etc/traefik/kamal --providers.file.watch" +
        " --providers.providersThrottleDuration=50ms --serverstransport.forwardingtimeouts.idleconntimeout=1s --entrypoints.http.address=:80 --entrypoints.http.transport.keepAliveMaxTime=2s" +
        " --api.insecure --entrypoints.traefik.address=:8080" +
        " --experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin" +
        " --log.level=ERROR --accesslog",
    );
  });

  it("replaces Traefik in one command: the running one steps aside, the incoming one takes its name", async () => {
    const { replaceTraefik } = await import("../../provider/commands/traefik");
    expect(replaceTraefik("traefik", "traefik_old_a1b2c3", "traefik_next_a1b2c3", 10).text).toBe(
      "docker stop --time 10 traefik && docker rename traefik traefik_old_a1b2c3 && docker rename traefik_next_a1b2c3 traefik && docker start traefik",
    );
  });

  it("tries a new Traefik configuration beside the serving one: no port, no network, no labels, no restart", async () => {
    const { trialTraefik } = await import("../../provider/commands/traefik");
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", args: { "no-such-option": "1" }, labels: { "traefik.http.routers.x.rule": "Host(`x`)" } });
    expect(trialTraefik(cfg, { name: "traefik_trial_a1b2c3", dirs: traefikDirs("/root") }).text).toBe(
      "docker run --detach --name traefik_trial_a1b2c3" +
        " --volume /var/run/docker.sock:/var/run/docker.sock --volume /root/.kamal/proxy/traefik:/etc/traefik/kamal:ro --volume /root/.kamal/proxy/plugins-local:/plugins-local:ro" +
        " --label traefik.enable=false --log-opt max-size=10m --network none traefik:v3.6" +
        " --providers.docker --providers.file.directory=/etc/traefik/kamal --providers.file.watch" +
        " --providers.providersThrottleDuration=50ms --serverstransport.forwardingtimeouts.idleconntimeout=1s --entrypoints.http.address=:80 --entrypoints.http.transport.keepAliveMaxTime=2s" +
        " --api.insecure --entrypoints.traefik.address=:8080 --experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin --log.level=INFO --no-such-option=1",
    );
  });

  it("joins Traefik to user networks (created if missing) before it starts", () => {
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", networks: ["kamal"] });
    const { ensureNetwork } = docker;
    const cmd = createTraefik(cfg, { name: "traefik_next_a1b2c3", dirs: traefikDirs("/root") });
    expect(cmd.text.endsWith(` --log.level=INFO && ${ensureNetwork("kamal").text} && docker network connect kamal traefik_next_a1b2c3`)).toBe(true);
    expect(cmd.text).toMatch(/^docker create .* traefik:v3\.6 /);
  });

  it("runs an accessory on a user network, created first if missing (Kamal 2's kamal network)", () => {
    const cfg = accessoryContainer.parse({ hostName: "db-1", connection, service: "hey", name: "db", image: "postgres:17", options: { network: "kamal" } });
    expect(runAccessory(cfg, { dataDir: "/root/hey-db" }).text).toBe(
      "{ docker network inspect kamal >/dev/null 2>&1 || { i=0; until mkdir /tmp/.kamal-network-kamal.lock 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done; docker network inspect kamal >/dev/null 2>&1 || docker network create kamal >/dev/null; r=$?; rmdir /tmp/.kamal-network-kamal.lock 2>/dev/null; [ $r -eq 0 ]; }; }" +
        " && docker run --detach --restart unless-stopped --name hey-db --label service=hey-db --label traefik.enable=false --log-opt max-size=10m --network kamal postgres:17",
    );
    expect(docker.runContainer({ name: "a", image: "i", options: { network: "host" } }).text).toBe("docker run --detach --name a --log-opt max-size=10m --network host i");
    expect(runAccessory(cfg, { dataDir: "/root/hey-db" }).policy.repeatable).toBe(false);
  });

  it("runs an accessory with its files, directories and port", () => {
    const cfg = accessoryContainer.parse({
      hostName: "db-1", connection, service: "hey", name: "mysql", image: "mysql:8.0", port: "127.0.0.1:3306:3306",
      env: { MYSQL_ROOT_HOST: "%" }, files: [{ target: "/etc/mysql/my.cnf", content: "[mysqld]\n" }],
      directories: ["data:/var/lib/mysql"], options: { "cap-add": true },
    });
    expect(runAccessory(cfg, { dataDir: "/root/hey-mysql", envFile: "/root/.kamal/env/accessories/hey-mysql.env" }).text).toBe(
      "docker run --detach --restart unless-stopped --name hey-mysql --publish 127.0.0.1:3306:3306" +
        " --env MYSQL_ROOT_HOST=% --env-file /root/.kamal/env/accessories/hey-mysql.env" +
        " --volume /root/hey-mysql/etc/mysql/my.cnf:/etc/mysql/my.cnf --volume /root/hey-mysql/data:/var/lib/mysql" +
        " --label service=hey-mysql --label traefik.enable=false --log-opt max-size=10m --cap-add mysql:8.0",
    );
  });
});

describe("scopes and routes", () => {
  it("labels every container with its destination, empty without one, as Kamal does", async () => {
    const { scopeLabels, routeRule, copyKind, routesOf, appLabels } = await import("../../provider/commands/app");
    expect(scopeLabels({ service: "hey", role: "web" })).toEqual({ service: "hey", role: "web", destination: "" });
    expect(scopeLabels({ service: "hey", role: "web", destination: "staging" })).toEqual({ service: "hey", role: "web", destination: "staging" });
    expect(routeRule([])).toBe("PathPrefix(`/`)");
    expect(routeRule(["a.example.com", "*.b.example.com"])).toBe("Host(`a.example.com`) || HostRegexp(`^[^.]+\\.b\\.example\\.com$`)");
    expect(copyKind("hey-web-v1")).toBe("current");
    expect(copyKind("hey-web-v1_replaced_0a1b2c3d")).toBe("replaced");
    expect(copyKind("hey-web-v1_failed_0a1b2c3d")).toBe("failed");
    const staging = appContainer.parse({
      hostName: "web-1", connection, service: "hey", role: "web", destination: "staging", image: "hey", version: "v1",
      traefik: true, healthcheck: {}, routeHosts: ["staging.example.com"],
    });
    expect(routesOf(appLabels(staging))).toEqual(["* Host(`staging.example.com`)"]);
  });

  it("lists a service's containers with the labels that decide their scope", async () => {
    const { serviceContainers, scopedContainerLabels } = await import("../../provider/commands/docker");
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
    const { pruneList } = await import("../../provider/commands/app");
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
    const { routeConfig, routeServers } = await import("../../provider/commands/proxy");
    const text = routeConfig({ name: "shop-web", rule: "PathPrefix(`/`)", entrypoints: ["http"], servers: ["http://172.17.0.5:80"] });
    expect(routeServers(text, "shop-web")).toEqual(["http://172.17.0.5:80"]);
    expect(routeServers(text, "other")).toBeUndefined();
    expect(routeServers("not json", "shop-web")).toBeUndefined();
  });

  it("writes one scope's router, retry middleware and load balancer as JSON (which Traefik reads as YAML)", async () => {
    const { routeConfig, routeFile } = await import("../../provider/commands/proxy");
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
    const { wantsLabelRouting } = await import("../../provider/commands/app");
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

describe("command policies: what may run again after a dropped connection, and its deadline", () => {
  const policy = (command: Command) => {
    const { notReached: _n, ...rest } = command.policy;
    return rest;
  };
  it("reads repeat, with the read deadline", () => {
    for (const c of [
      docker.containerState("a"),
      docker.serviceContainers("hey"),
      docker.scopedContainerLabels(),
      docker.imageId("r/a:v1"),
      docker.containerLogs("a"),
      docker.execInContainer("a", "/app probe http://127.0.0.1/up"),
      docker.imagesOf("r/a"),
      homeDirectory(),
    ]) {
      expect([c.text, policy(c)]).toEqual([c.text, { repeatable: true, deadline: "read", extraSeconds: 0 }]);
    }
  });
  it("changes that leave the host the same when repeated repeat, with the change deadline; a stop adds its wait", () => {
    for (const c of [docker.removeContainers(["a"], true), docker.makeDirectories(["/x"]), docker.tieCord("/c"), docker.cutCord("/c"), docker.startContainer("a"), docker.writeFileAtomically("/r/x.yml")]) {
      expect([c.text, policy(c)]).toEqual([c.text, { repeatable: true, deadline: "change", extraSeconds: 0 }]);
    }
    expect(policy(docker.stopContainer("a", 25))).toEqual({ repeatable: true, deadline: "change", extraSeconds: 25 });
  });
  it("pulls and logins repeat, with the pull deadline", () => {
    expect(policy(docker.pullImage("r/a:v1"))).toEqual({ repeatable: true, deadline: "pull", extraSeconds: 0 });
    expect(policy(docker.dockerLogin("r", "u"))).toEqual({ repeatable: true, deadline: "pull", extraSeconds: 0 });
  });
  it("a command that never reached a restarting dockerd runs again: one docker invocation, or a repeatable one", () => {
    const reached = (c: Command) => c.policy.notReached;
    for (const c of [docker.runContainer({ name: "a", image: "r/a:v1" }), docker.renameContainer("a", "b"), docker.containerState("a"), docker.scopedContainerLabels()]) {
      expect([c.text, reached(c)]).toEqual([c.text, ENGINE_DOWN]);
    }
    // Two changes in one command line: the first may have run.
    const chain = Command.allOf(docker.stopContainer("a", 10), docker.renameContainer("a", "b"));
    expect(reached(chain)).toBeUndefined();
    expect(ENGINE_DOWN.test("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")).toBe(true);
  });
  it("run, create, rename and anything unknown never run twice", () => {
    for (const c of [
      docker.runContainer({ name: "a", image: "r/a:v1" }),
      docker.runContainer({ name: "a", image: "r/a:v1", createOnly: true }),
      docker.renameContainer("a", "b"),
      Command.adHoc("echo hi > /tmp/x"),
      Command.adHoc("cat > /tmp/x"),
    ]) {
      expect([c.text, policy(c)]).toEqual([c.text, { repeatable: false, deadline: "change", extraSeconds: 0 }]);
    }
  });
});

describe("the deploy lock, in Kamal 2's place and format", () => {
  const details = { holder: "pulumi-kamal shop/prod on ci@runner-1 pid 4242", at: "2026-11-23T17:00:00Z", version: "v2", message: "Automatic deploy lock" };
  const encoded = Buffer.from("Locked by: pulumi-kamal shop/prod on ci@runner-1 pid 4242 at 2026-11-23T17:00:00Z\nVersion: v2\nMessage: Automatic deploy lock").toString("base64");
  it("lives in .kamal/lock-<service>[-<destination>]", () => {
    expect(lock.lockDir("shop")).toBe(".kamal/lock-shop");
    expect(lock.lockDir("shop", "staging")).toBe(".kamal/lock-shop-staging");
  });
  it("is taken with mkdir (atomic), its details base64-encoded as Kamal writes them", () => {
    expect(lock.acquireLock(".kamal/lock-shop", details).text).toBe(
      `{ mkdir .kamal/lock-shop 2>/dev/null || { mkdir -p .kamal && mkdir .kamal/lock-shop; }; } && printf '%s\\n' ${encoded} > .kamal/lock-shop/details`,
    );
    expect(lock.acquireLock(".kamal/lock-shop", details).policy.repeatable).toBe(false);
  });
  it("is read as Kamal reads it, and released only while it holds our details", () => {
    expect(lock.readLock(".kamal/lock-shop").text).toBe("base64 -d .kamal/lock-shop/details 2>/dev/null || test -d .kamal/lock-shop");
    expect(lock.releaseLock(".kamal/lock-shop", details).text).toBe(
      `if [ "$(cat .kamal/lock-shop/details 2>/dev/null)" = ${encoded} ]; then rm -rf .kamal/lock-shop; fi`,
    );
  });
  it("parses Kamal's own details and ours", () => {
    // What `kamal lock acquire -m "db migration"` writes (Kamal 2, lib/kamal/commands/lock.rb).
    const kamal = "Locked by: Jane Doe at 2026-11-23T16:59:01Z\nVersion: 3f2a9c1\nMessage: db migration";
    expect(lock.parseLockDetails(kamal)).toEqual({ holder: "Jane Doe", at: "2026-11-23T16:59:01Z", version: "3f2a9c1", message: "db migration" });
    expect(lock.parseLockDetails(lock.lockDetailsText(details))).toEqual(details);
    expect(lock.parseLockDetails("garbage")).toBeUndefined();
  });
});

describe("handing a port from one proxy to another", () => {
  const r = { hostPort: 80, to: "172.17.0.3", toPort: 80, id: "a1b2c3" };
  const dnat = "-m comment --comment kamal-handover-a1b2c3 -j DNAT --to-destination 172.17.0.3:80";

  it("redirects new connections to the bridge ahead of Docker's rules, and admits them", async () => {
    const h = await import("../../provider/commands/handover");
    expect(h.addRedirect(r, false).text).toBe(
      `iptables -w 5 -t nat -I PREROUTING 1 -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat}` +
        ` && iptables -w 5 -t nat -I OUTPUT 1 '!' -d 127.0.0.0/8 -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat}` +
        " && iptables -w 5 -t filter -I DOCKER-USER 1 -d 172.17.0.3 -p tcp --dport 80 -m comment --comment kamal-handover-a1b2c3 -j ACCEPT",
    );
    // A port bound to one address, through passwordless sudo.
    expect(h.addRedirect({ ...r, hostPort: "10.0.0.5:8080" }, true).text).toBe(
      "sudo -n iptables -w 5 -t nat -I PREROUTING 1 -d 10.0.0.5 -p tcp --dport 8080 -m addrtype --dst-type LOCAL " + dnat +
        " && sudo -n iptables -w 5 -t nat -I OUTPUT 1 '!' -d 127.0.0.0/8 -d 10.0.0.5 -p tcp --dport 8080 -m addrtype --dst-type LOCAL " + dnat +
        " && sudo -n iptables -w 5 -t filter -I DOCKER-USER 1 -d 172.17.0.3 -p tcp --dport 80 -m comment --comment kamal-handover-a1b2c3 -j ACCEPT",
    );
  });

  it("removes the redirect first, the admission once the bridge has drained; missing rules are fine", async () => {
    const h = await import("../../provider/commands/handover");
    const nat =
      `iptables -w 5 -t nat -D PREROUTING -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat} 2>/dev/null;` +
      ` iptables -w 5 -t nat -D OUTPUT '!' -d 127.0.0.0/8 -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat} 2>/dev/null; `;
    expect(h.removeRedirect(r, false).text).toBe(`${nat}true`);
    expect(h.removeRedirect(r, false, true).text).toBe(
      `${nat}iptables -w 5 -t filter -D DOCKER-USER -d 172.17.0.3 -p tcp --dport 80 -m comment --comment kamal-handover-a1b2c3 -j ACCEPT 2>/dev/null; true`,
    );
  });

  it("finds and deletes what an interrupted handover left, quoting every word iptables printed", async () => {
    const h = await import("../../provider/commands/handover");
    expect(h.listRedirects(false).text).toBe(
      "iptables -w 5 -t nat -S PREROUTING 2>/dev/null | sed -n 's/^/nat /; /kamal-handover-/p';" +
        " iptables -w 5 -t nat -S OUTPUT 2>/dev/null | sed -n 's/^/nat /; /kamal-handover-/p';" +
        " iptables -w 5 -t filter -S DOCKER-USER 2>/dev/null | sed -n 's/^/filter /; /kamal-handover-/p'",
    );
    expect(h.deleteListedRule('nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -m comment --comment "kamal-handover-ff0011" -j DNAT --to-destination 172.17.0.3:80', true)?.text).toBe(
      "sudo -n iptables -w 5 -t nat -D PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -m comment --comment kamal-handover-ff0011 -j DNAT --to-destination 172.17.0.3:80 2>/dev/null; true",
    );
    expect(h.deleteListedRule("nat -N DOCKER", false)?.text).toBeUndefined();
    expect(h.deleteListedRule("raw -A PREROUTING -j DROP", false)?.text).toBeUndefined();
    expect(h.probeIptables(true).text).toBe("sudo -n iptables -w 5 -t nat -S DOCKER");
  });

  it("starts the bridge Traefik unpublished, on Traefik's networks, unrouted, telling clients to reconnect", async () => {
    const { bridgeTraefik } = await import("../../provider/commands/traefik");
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", networks: ["kamal"], labels: { "traefik.http.routers.x.rule": "Host(`x`)" } });
    expect(bridgeTraefik(cfg, { name: "traefik_handover_a1b2c3", dirs: traefikDirs("/root") }).text).toBe(
      "docker create --name traefik_handover_a1b2c3" +
        " --volume /var/run/docker.sock:/var/run/docker.sock --volume /root/.kamal/proxy/traefik:/etc/traefik/kamal:ro --volume /root/.kamal/proxy/plugins-local:/plugins-local:ro" +
        " --label traefik.enable=false --log-opt max-size=10m traefik:v3.6" +
        " --providers.docker --providers.file.directory=/etc/traefik/kamal --providers.file.watch" +
        " --providers.providersThrottleDuration=50ms --serverstransport.forwardingtimeouts.idleconntimeout=1s --entrypoints.http.address=:80 --entrypoints.http.transport.keepAliveMaxTime=2s" +
        " --api.insecure --entrypoints.traefik.address=:8080" +
        " --experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin --log.level=INFO" +
        " && { docker network inspect kamal >/dev/null 2>&1 || { i=0; until mkdir /tmp/.kamal-network-kamal.lock 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done; docker network inspect kamal >/dev/null 2>&1 || docker network create kamal >/dev/null; r=$?; rmdir /tmp/.kamal-network-kamal.lock 2>/dev/null; [ $r -eq 0 ]; }; }" +
        " && docker network connect kamal traefik_handover_a1b2c3 && docker start traefik_handover_a1b2c3",
    );
  });

  it("stops kamal-proxy (kept under its name) and starts Traefik in one command", async () => {
    const { replaceKamalProxy } = await import("../../provider/commands/traefik");
    expect(replaceKamalProxy("kamal-proxy", "traefik_next_a1b2c3", 10).text).toBe(
      "docker stop --time 10 kamal-proxy && docker rename traefik_next_a1b2c3 traefik && docker start traefik",
    );
  });

  it("reads kamal-proxy's services from `kamal-proxy list` (v0.9.2), empty cells included", async () => {
    const { parseKamalProxyList, kamalProxyList } = await import("../../provider/commands/kamalProxy");
    expect(kamalProxyList().text).toBe("docker exec kamal-proxy kamal-proxy list");
    const b = (s: string) => `\x1b[1;34m${s}\x1b[0m`;
    const i = (s: string) => `\x1b[3;94m${s}\x1b[0m`;
    const p = (s: string) => `\x1b[m${s}\x1b[0m`;
    const text =
      [i("Service      "), i("Host                   "), i("Path  "), i("Target           "), i("State  "), i("TLS")].join("  ") + "  \n" +
      [b("hey-web      "), p("hey.example.com,hey.io "), p("      "), p("0a1b2c3d4e5f:80  "), p("running"), p("no ")].join("  ") + "  \n" +
      [b("hey-api-stage"), p("*                      "), p("/api  "), p("9f8e7d6c5b4a:3000"), p("paused "), p("yes")].join("  ") + "  \n";
    expect(parseKamalProxyList(text)).toEqual([
      { name: "hey-web", hosts: ["hey.example.com", "hey.io"], paths: [], targets: ["0a1b2c3d4e5f:80"], state: "running", tls: false },
      { name: "hey-api-stage", hosts: [], paths: ["/api"], targets: ["9f8e7d6c5b4a:3000"], state: "paused", tls: true },
    ]);
    expect(() => parseKamalProxyList("Name Where\nx y\n")).toThrow("unexpected `kamal-proxy list` output: Name Where");
  });
});

describe("Kamal 1's Let's Encrypt recipe: the user's own entrypoint on port 80", () => {
  it("takes the place of ours: no second listener on :80 or :443, keep-alive rotation on theirs", async () => {
    const { traefikArgs, webEntrypoint } = await import("../../provider/commands/traefik");
    const args = {
      "entryPoints.web.address": ":80",
      "entryPoints.websecure.address": ":443",
      "entryPoints.web.http.redirections.entryPoint.to": "websecure",
      "certificatesResolvers.letsencrypt.acme.httpchallenge.entrypoint": "web",
    };
    expect(webEntrypoint(args)).toEqual({ name: "web", ours: false });
    expect(webEntrypoint({ "entrypoints.http.address": "0.0.0.0:80/tcp" })).toEqual({ name: "http", ours: false });
    expect(webEntrypoint({ "entryPoints.websecure.address": ":443" })).toEqual({ name: "http", ours: true });
    expect(traefikArgs({ image: "traefik:v2.11", apiPort: 8080, args })).toEqual([
      "--providers.docker", "--providers.file.directory=/etc/traefik/kamal", "--providers.file.watch",
      "--providers.providersThrottleDuration=50ms", "--serverstransport.forwardingtimeouts.idleconntimeout=1s", "--entrypoints.web.transport.keepAliveMaxTime=2s",
      "--entrypoints.websecure.transport.keepAliveMaxTime=2s", "--api.insecure", "--entrypoints.traefik.address=:8080",
      "--experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin", "--log.level=INFO",
      "--entryPoints.web.address=:80", "--entryPoints.websecure.address=:443",
      "--entryPoints.web.http.redirections.entryPoint.to=websecure", "--certificatesResolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
    ]);
  });

  it("sets keepAliveMaxTime only for a Traefik that knows it (v2.11 and later, or any other tag)", async () => {
    const { knowsKeepAliveMax, traefikArgs } = await import("../../provider/commands/traefik");
    expect(["traefik:v2.10", "traefik:2.9.6", "registry.example.com:5000/traefik:v1.7"].map(knowsKeepAliveMax)).toEqual([false, false, false]);
    expect(["traefik:v2.11", "traefik:v3.6", "traefik:latest", "traefik", "registry.example.com:5000/traefik", "traefik:v3.6@sha256:abc"].map(knowsKeepAliveMax)).toEqual([true, true, true, true, true, true]);
    expect(traefikArgs({ image: "traefik:v2.10", apiPort: 0, args: {} })).toEqual([
      "--providers.docker", "--providers.file.directory=/etc/traefik/kamal", "--providers.file.watch",
      "--providers.providersThrottleDuration=50ms", "--serverstransport.forwardingtimeouts.idleconntimeout=1s", "--entrypoints.http.address=:80",
      "--experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin", "--log.level=INFO",
    ]);
  });

  it("routes on every web entrypoint, whatever it is called: route files and labels name none", async () => {
    const { routeConfig } = await import("../../provider/commands/proxy");
    expect(JSON.parse(routeConfig({ name: "hey-web", rule: "PathPrefix(`/`)", servers: ["http://172.18.0.5:80"] })).http.routers).toEqual({
      "hey-web": { rule: "PathPrefix(`/`)", service: "hey-web", middlewares: ["hey-web-retry"] },
    });
  });
});

describe("the ports a Traefik takes traffic on", () => {
  it("are the web port and those its options publish; a trial or bridge Traefik publishes none", async () => {
    const { trafficPorts, trialTraefik, bridgeTraefik } = await import("../../provider/commands/traefik");
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", options: { publish: ["443:443", "10.0.0.5:8443:443/tcp", "53:53/udp"], memory: "256m" } });
    expect(trafficPorts(cfg)).toEqual([
      { host: "80", container: 80 },
      { host: "443", container: 443 },
      { host: "10.0.0.5:8443", container: 443 },
    ]);
    expect(trafficPorts(traefikContainer.parse({ hostName: "web-1", connection, image: "t", hostPort: "127.0.0.1:8080:80" }))).toEqual([{ host: "127.0.0.1:8080", container: 80 }]);
    const at = { name: "traefik_x", dirs: traefikDirs("/root") };
    for (const cmd of [trialTraefik(cfg, at), bridgeTraefik(cfg, at)]) {
      expect(cmd.text).not.toMatch(/--publish|-p /);
      expect(cmd.text).toContain("--memory 256m");
    }
  });
});

describe("the operator's commands (pulumi-kamal details, logs, exec) and the audit log", () => {
  const cfg = appContainer.parse({
    hostName: "web-1", connection, service: "hey", role: "web", destination: "production", image: "r.example.com/hey", version: "v2",
    env: { RAILS_ENV: "production" }, volumes: ["/data/storage:/rails/storage"], options: { network: "kamal", publish: "8080:80", memory: "1g" },
  });

  it("runs a one-off container of the deployed version with the role's env file, or inside the running one", () => {
    expect(ops.execContainerName(cfg, "a1b2c3")).toBe("hey-web-production-exec-v2-a1b2c3");
    expect(ops.execCommand(cfg, ["bin/rails", "runner", "puts 'hi there'"], { name: "hey-web-production-exec-v2-a1b2c3", envFile: ".kamal/apps/hey-production/env/roles/web.env" }).text).toBe(
      "{ docker network inspect kamal >/dev/null 2>&1 || { i=0; until mkdir /tmp/.kamal-network-kamal.lock 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done;" +
        " docker network inspect kamal >/dev/null 2>&1 || docker network create kamal >/dev/null; r=$?; rmdir /tmp/.kamal-network-kamal.lock 2>/dev/null; [ $r -eq 0 ]; }; } &&" +
        " docker run --name hey-web-production-exec-v2-a1b2c3" +
        " --env KAMAL_CONTAINER_NAME=hey-web-production-exec-v2-a1b2c3 --env KAMAL_DESTINATION=production --env KAMAL_HOST=10.0.0.1 --env KAMAL_VERSION=v2 --env RAILS_ENV=production" +
        " --env-file .kamal/apps/hey-production/env/roles/web.env --volume /data/storage:/rails/storage" +
        " --label destination=production --label kamal.exec=v2 --label service=hey" +
        " --log-opt max-size=10m --memory 1g --network kamal --rm r.example.com/hey:v2 bin/rails runner 'puts '\\''hi there'\\'''",
    );
    expect(ops.execCommand(cfg, ["bin/rails", "console"], { name: "x", interactive: true, reuse: "hey-web-production-v2" }).text).toBe("docker exec --interactive --tty hey-web-production-v2 bin/rails console");
    expect(ops.execCommand(cfg, ["sh"], { name: "n", interactive: true }).text).toMatch(/ --log-opt max-size=10m --interactive --memory 1g --network kamal --rm --tty r\.example\.com\/hey:v2 sh$/);
  });

  it("reads logs with timestamps, and describes containers in one inspect", () => {
    expect(ops.logs("hey-web-production-v2").text).toBe("docker logs --timestamps hey-web-production-v2 2>&1");
    expect(ops.logs("hey-web-production-v2", { follow: true, since: "10m", lines: 10 }).text).toBe("docker logs --timestamps --since 10m --tail 10 --follow hey-web-production-v2 2>&1");
    expect(ops.describeContainers(["hey-web-production-v2", "traefik"]).text).toBe(
      "docker container inspect --format '{{.Name}}\t{{.State.Status}}\t{{if .State.Health}}{{.State.Health.Status}}{{end}}\t{{.State.StartedAt}}\t{{.Image}}\t{{.Config.Image}}\t{{index .Config.Labels \"version\"}}\t{{.RestartCount}}' hey-web-production-v2 traefik 2>/dev/null",
    );
    expect(ops.repoDigests("sha256:abc").text).toBe("docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' sha256:abc");
  });

  it("appends Kamal's audit line, quoted, and reads the tail", () => {
    const line = audit.auditLine({ recordedAt: "2026-12-02T10:00:00Z", performer: "ops@example.com", destination: "production", role: "web" }, "Started app version v2 (was v1)\nsecond line");
    expect(line).toBe("[2026-12-02T10:00:00Z] [ops@example.com] [production] [web] Started app version v2 (was v1) second line");
    expect(audit.auditLine({ recordedAt: "2026-12-02T10:00:00Z", performer: "ci" }, "Booted hey-db accessory")).toBe("[2026-12-02T10:00:00Z] [ci] Booted hey-db accessory");
    expect(audit.auditFile("hey", "production")).toBe(".kamal/hey-production-audit.log");
    expect(audit.auditFile("hey")).toBe(".kamal/hey-audit.log");
    expect(audit.recordAudit(".kamal/hey-audit.log", "[t] [it's me] x").text).toBe("mkdir -p .kamal && printf '%s\\n' '[t] [it'\\''s me] x' >> .kamal/hey-audit.log");
    expect(audit.revealAudit(".kamal/hey-audit.log", 50).text).toBe("if [ -f .kamal/hey-audit.log ]; then tail -n 50 .kamal/hey-audit.log; fi");
    expect(audit.kamalTime(new Date("2026-12-02T10:00:00.123Z"))).toBe("2026-12-02T10:00:00Z");
  });
});

describe("bootstrap builders", () => {
  const facts = (o: Partial<boot.HostFacts> = {}): boot.HostFacts => ({ uid: 1001, user: "deploy", dockerCli: true, superuser: "sudo", inDockerGroup: false, init: "systemd", packageManager: "apt-get", os: "debian", runDir: false, ...o });

  it("probes with one read-only script and parses what it prints", () => {
    expect(boot.probeHost().text).toBe(
      [
        'echo "uid=$(id -u)"',
        'echo "user=$(id -un)"',
        "if command -v docker >/dev/null 2>&1; then echo cli=yes; fi",
        "if v=$(docker version --format '{{.Server.Version}}' 2>/dev/null); then echo \"engine=$v\"; fi",
        'if [ "$(id -u)" = 0 ]; then echo super=root;',
        "elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo super=sudo; if v=$(sudo -n docker version --format '{{.Server.Version}}' 2>/dev/null); then echo \"rootEngine=$v\"; fi;",
        "else echo super=none; fi",
        "if id -nG 2>/dev/null | tr ' ' '\\n' | grep -qx docker; then echo group=yes; fi",
        "if [ -d /run/systemd/system ]; then echo init=systemd; elif command -v rc-service >/dev/null 2>&1; then echo init=openrc; else echo init=sysv; fi",
        'for m in apt-get dnf yum zypper apk pacman; do if command -v $m >/dev/null 2>&1; then echo "pm=$m"; break; fi; done',
        '(if [ -r /etc/os-release ]; then . /etc/os-release && echo "os=$ID"; fi)',
        "if [ -d .kamal ]; then echo rundir=yes; fi",
      ].join("\n"),
    );
    expect(boot.parseFacts("uid=1001\nuser=deploy\ncli=yes\nsuper=sudo\nrootEngine=27.5.1\ninit=sysv\npm=apt-get\nos=debian\n")).toEqual(facts({ rootEngine: "27.5.1", init: "sysv" }));
    // Root: the engine it reaches is root's.
    expect(boot.parseFacts("uid=0\nuser=root\ncli=yes\nengine=27.5.1\nsuper=root\ngroup=yes\ninit=systemd\npm=dnf\nos=fedora\nrundir=yes\n")).toEqual(
      facts({ uid: 0, user: "root", engine: "27.5.1", rootEngine: "27.5.1", superuser: "root", inDockerGroup: true, packageManager: "dnf", os: "fedora", runDir: true }),
    );
    expect(boot.parseFacts("uid=1001\nuser=deploy\nsuper=none\ninit=openrc\npm=brew\n")).toEqual(facts({ dockerCli: false, superuser: "none", init: "openrc", packageManager: undefined, os: undefined }));
    expect(() => boot.parseFacts("Welcome!\n")).toThrow("the host did not say who the SSH user is (id -u, id -un)");
  });

  it("runs root's steps as root, through sudo -n, or refuses naming the user", () => {
    expect(boot.asRoot(facts({ superuser: "root", user: "root" }), Command.adHoc("service docker start")).text).toBe("service docker start");
    expect(boot.asRoot(facts(), Command.adHoc("usermod -aG docker deploy")).text).toBe("sudo -n sh -c 'usermod -aG docker deploy'");
    expect(boot.asRoot(facts(), Command.adHoc("echo 'a'")).text).toBe("sudo -n sh -c 'echo '\\''a'\\'''");
    expect(() => boot.asRoot(facts({ superuser: "none" }), Command.adHoc("service docker start"))).toThrow(
      "deploy is not root and cannot run sudo without a password: install Docker as root, or allow deploy passwordless sudo, and run bootstrap again",
    );
  });

  it("installs the distribution's own Docker package, or says there is none", () => {
    expect(boot.installDocker(facts())?.text).toBe("DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io");
    expect(boot.installDocker(facts({ packageManager: "dnf", os: "fedora" }))?.text).toBe("dnf install -y moby-engine");
    expect(boot.installDocker(facts({ packageManager: "dnf", os: "amzn" }))?.text).toBe("dnf install -y docker");
    expect(boot.installDocker(facts({ packageManager: "yum", os: "amzn" }))?.text).toBe("yum install -y docker");
    expect(boot.installDocker(facts({ packageManager: "zypper", os: "opensuse-leap" }))?.text).toBe("zypper --non-interactive install docker");
    expect(boot.installDocker(facts({ packageManager: "apk", os: "alpine" }))?.text).toBe("apk add --no-cache docker");
    expect(boot.installDocker(facts({ packageManager: "pacman", os: "arch" }))?.text).toBe("pacman -S --noconfirm --needed docker");
    expect(boot.installDocker(facts({ packageManager: "dnf", os: "rocky" }))?.text).toBeUndefined();
    expect(boot.installDocker(facts({ packageManager: undefined }))?.text).toBeUndefined();
  });

  it("starts the engine by the init system and waits for it; joins the group; creates the network and the run directory", () => {
    const wait = " && i=0 && until docker version >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge 300 ]; then echo 'dockerd did not answer within 60 s' >&2; exit 1; fi; sleep 0.2; done";
    expect(boot.startDocker("systemd").text).toBe(`systemctl enable --now docker${wait}`);
    expect(boot.startDocker("openrc").text).toBe(`rc-update add docker default && rc-service docker start${wait}`);
    expect(boot.startDocker("sysv").text).toBe(`service docker start${wait}`);
    expect(boot.joinDockerGroup("deploy").text).toBe("{ getent group docker >/dev/null || groupadd docker; } && if command -v usermod >/dev/null 2>&1; then usermod -aG docker deploy; else addgroup deploy docker; fi");
    expect(boot.joinDockerGroup("a b").text).toContain("usermod -aG docker 'a b'; else addgroup 'a b' docker;");
    expect(boot.networkExists("kamal").text).toBe("docker network inspect kamal >/dev/null 2>&1");
    expect(boot.createNetwork("kamal").text).toBe(docker.ensureNetwork("kamal").text);
    expect(boot.createRunDir().text).toBe("mkdir -p .kamal");
  });
});

describe("a host that is not ready for deploys", () => {
  it("says which bootstrap step fixes it, after the command's own error", async () => {
    const { RemoteCommandError } = await import("../../provider/ssh/errors");
    expect(new RemoteCommandError("web-1", "docker login r.example.com", 127, undefined, "sh: 1: docker: not found", "").message).toBe(
      "ssh web-1: command failed with exit code 127: docker login r.example.com\n--- stderr (tail) ---\nsh: 1: docker: not found\n(Docker is not installed on this host (or not on the SSH user's PATH): pulumi-kamal bootstrap installs it)",
    );
    expect(new RemoteCommandError("web-1", "docker ps", 1, undefined, "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get …", "").message).toMatch(
      /\n\(the SSH user may not use the Docker engine: pulumi-kamal bootstrap adds it to the docker group\)$/,
    );
    expect(new RemoteCommandError("web-1", "docker ps", 1, undefined, "Error: No such container: x", "").message).toBe("ssh web-1: command failed with exit code 1: docker ps\n--- stderr (tail) ---\nError: No such container: x");
  });
});

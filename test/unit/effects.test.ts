/**
 * Each field's declared effect (config/schemas.ts), tested from the schema itself: every
 * field of every resource kind must appear here with two different values, and changing it
 * must diff, plan and update exactly as declared. A field added without a row fails.
 */
import { describe, expect, it } from "vitest";
import { declaredEffects } from "../../provider/config/fields";
import { type Effect } from "../../provider/config/declare";
import { schemas } from "../../provider/config/kinds";
import * as accessory from "../../provider/handlers/accessory";
import * as app from "../../provider/handlers/app";
import { mustAct, plan } from "../../provider/handlers/common";
import * as envFile from "../../provider/handlers/envFile";
import * as release from "../../provider/handlers/release";
import * as hook from "../../provider/handlers/hook";
import * as image from "../../provider/handlers/image";
import * as traefik from "../../provider/handlers/traefik";

type Kind = keyof typeof schemas;
type Row = [unknown, unknown];

const connection = { host: "10.0.0.1", user: "root", privateKey: "KEY", knownHostsPath: "/kh" };

const BASE: Record<Kind, Record<string, unknown>> = {
  app: {
    hostName: "web-1", connection, service: "hey", role: "web", image: "registry.example.com/hey", version: "v1",
    traefik: true, healthcheck: { path: "/up" },
  },
  traefik: { hostName: "web-1", connection, image: "traefik:v3.6" },
  envFile: { hostName: "web-1", connection, path: ".kamal/env/roles/hey-web.env", env: { A: "1" } },
  accessory: { hostName: "db-1", connection, service: "hey", name: "db", image: "postgres:17" },
  release: { hostName: "web-1", connection, service: "hey", role: "web", image: "registry.example.com/hey", version: "v1", cmd: "bin/rails db:migrate" },
  hook: { name: "pre-deploy", path: "/app/.kamal/hooks/pre-deploy", contentHash: "c1", cwd: "/app", trigger: "t1" },
  image: {
    repository: "registry.example.com/hey", version: "v1", service: "hey", dockerfileHash: "git-blob:1",
    context: { source: "git", path: "/src/hey", commit: "a".repeat(40), hash: "git-tree:1" },
    remote: { connection },
  },
};

const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;

const CONNECTION_ROWS: Record<string, Row> = {
  "connection.host": ["10.0.0.1", "10.0.0.2"],
  "connection.port": [22, 2222],
  "connection.user": ["root", "deploy"],
  "connection.privateKey": ["KEY", "KEY2"],
  "connection.privateKeyPath": [undefined, "/k"],
  "connection.privateKeys": [undefined, ["KEY3"]],
  "connection.privateKeyPaths": [undefined, ["/k2"]],
  "connection.keysOnly": [false, true],
  "connection.forwardAgent": [false, true],
  "connection.passphrase": [undefined, "pp"],
  "connection.password": [undefined, "pw"],
  "connection.agent": [undefined, true],
  "connection.knownHosts": [undefined, "h ssh-ed25519 AAAA"],
  "connection.knownHostsPath": ["/kh", "/kh2"],
  "connection.hostKey": [undefined, "ssh-ed25519 AAAA"],
  "connection.insecureIgnoreHostKey": [false, true],
  "connection.connectTimeout": [15, 5],
  "connection.keepaliveInterval": [15, 30],
  "connection.dialAttempts": [3, 5],
  "connection.maxChannels": [8, 4],
  "connection.maxConcurrentStarts": [undefined, 10],
  "connection.proxy": [undefined, { host: "bastion" }],
  "connection.proxyCommand": [undefined, "ssh -W %h:%p bastion"],
  "connection.deadlines": [undefined, { read: 10 }],
};
const REGISTRY: Row = [undefined, { server: "r.example.com", username: "u", password: "p" }];

const ROWS: Record<Kind, Record<string, Row>> = {
  app: {
    ...CONNECTION_ROWS,
    hostName: ["web-1", "web-one"],
    service: ["hey", "hey2"],
    role: ["web", "api"],
    destination: [undefined, "staging"],
    image: ["registry.example.com/hey", "registry.example.com/other"],
    version: ["v1", "v2"],
    digest: [undefined, DIGEST("a")],
    registry: REGISTRY,
    cmd: [undefined, "bin/web"],
    env: [undefined, { A: "1" }],
    envFile: [undefined, { path: "/e", hash: "h1" }],
    labels: [undefined, { a: "b" }],
    volumes: [undefined, ["/a:/b"]],
    options: [undefined, { init: true }],
    logging: [undefined, { driver: "local" }],
    traefik: [true, false],
    routeHosts: [undefined, ["app.example.com"]],
    proxy: [undefined, { responseTimeout: 30 }],
    maintenance: [undefined, { message: "back at noon" }],
    appPort: [80, 3000],
    assetPath: [undefined, "/rails/public/assets"],
    "healthcheck.path": ["/up", "/health"],
    "healthcheck.port": [80, 3000],
    "healthcheck.cmd": [undefined, "/app probe http://127.0.0.1/up"],
    "healthcheck.interval": [1, 2],
    "healthcheck.timeout": [5, 2],
    "healthcheck.retries": [3, 5],
    "healthcheck.deadline": [60, 30],
    "healthcheck.logLines": [30, 100],
    "healthcheck.cord": ["/tmp/kamal-cord", false],
    stopWaitTime: [30, 10],
    lockWait: [120, 10],
    runDirectory: [".kamal", "/var/lib/kamal"],
    retain: [5, 2],
    bootDelay: [0, 5],
    watch: [0, "30s"],
    rollout: [undefined, { group: "hey", members: ["web/web-1@0", "web/web-2@1"] }],
    exclusive: [false, true],
    primary: [false, true],
    errorPages: [undefined, { "502": "<p>down</p>" }],
    readinessDelay: [2, 7],
  },
  traefik: {
    ...CONNECTION_ROWS,
    hostName: ["web-1", "web-one"],
    image: ["traefik:v3.6", "traefik:v3.7"],
    registry: REGISTRY,
    hostPort: [80, 8080],
    apiPort: [8080, 0],
    args: [undefined, { accesslog: true }],
    tls: [undefined, { acme: { email: "ops@example.com" } }],
    forwardedHeaders: [undefined, ["10.0.0.0/8"]],
    labels: [undefined, { a: "b" }],
    options: [undefined, { init: true }],
    env: [undefined, { A: "1" }],
    envFile: [undefined, { path: "/e", hash: "h" }],
    networks: [[], ["kamal"]],
    rebooted: [undefined, "2026-12-05T20:50:00.000Z"],
    lockService: ["traefik", "myapp"],
    destination: [undefined, "staging"],
    lockWait: [120, 10],
    runDirectory: [".kamal", "/var/lib/kamal"],
    takeover: [undefined, "Kamal 2's kamal-proxy (basecamp/kamal-proxy:v0.9.2)"],
  },
  envFile: {
    ...CONNECTION_ROWS,
    hostName: ["web-1", "web-one"],
    path: [".kamal/env/roles/hey-web.env", ".kamal/env/roles/hey-api.env"],
    env: [{ A: "1" }, { A: "2" }],
  },
  accessory: {
    ...CONNECTION_ROWS,
    hostName: ["db-1", "db-one"],
    service: ["hey", "hey2"],
    name: ["db", "cache"],
    containerName: [undefined, "pg"],
    image: ["postgres:17", "postgres:18"],
    registry: REGISTRY,
    port: [undefined, 5432],
    cmd: [undefined, "postgres -c x=1"],
    env: [undefined, { A: "1" }],
    envFile: [undefined, { path: "/e", hash: "h" }],
    files: [undefined, [{ target: "/etc/x.conf", content: "x" }]],
    directories: [undefined, ["data:/var/lib/data"]],
    volumes: [undefined, ["/a:/b"]],
    options: [undefined, { init: true }],
    labels: [undefined, { a: "b" }],
    stopWaitTime: [30, 10],
    deleteDataOnDestroy: [false, true],
    destination: [undefined, "staging"],
    lockWait: [120, 10],
    runDirectory: [".kamal", "/var/lib/kamal"],
    hold: [false, true],
    proxy: [undefined, { hosts: ["panel.example.com"] }],
  },
  release: {
    // No field of the connection moves it (not even the address): one row for all.
    connection: [connection, { ...connection, host: "10.0.0.2" }],
    hostName: ["web-1", "web-one"],
    service: ["hey", "hey2"],
    role: ["web", "api"],
    destination: [undefined, "staging"],
    image: ["registry.example.com/hey", "registry.example.com/other"],
    version: ["v1", "v2"],
    digest: [undefined, DIGEST("b")],
    registry: REGISTRY,
    cmd: ["bin/rails db:migrate", ["bin/rails", "db:prepare"]],
    env: [undefined, { A: "1" }],
    envFile: [undefined, { path: "/e", hash: "h1" }],
    volumes: [undefined, ["/a:/b"]],
    options: [undefined, { network: "kamal" }],
    timeout: [600, "15m"],
    lockWait: [120, 10],
    runDirectory: [".kamal", "/var/lib/kamal"],
  },
  hook: {
    name: ["pre-deploy", "post-deploy"],
    path: ["/app/.kamal/hooks/pre-deploy", "/srv/app/.kamal/hooks/pre-deploy"],
    args: [undefined, ["-c", "bin/notify"]],
    contentHash: ["c1", "c2"],
    cwd: ["/app", "/srv/app"],
    trigger: ["t1", "t2"],
    env: [undefined, { KAMAL_VERSION: "v1" }],
    secretEnv: [undefined, { API_TOKEN: "x" }],
    timeout: [600, "5m"],
    skip: [undefined, true],
  },
  image: {
    repository: ["registry.example.com/hey", "registry.example.com/other"],
    version: ["v1", "v2"],
    tags: [undefined, ["latest"]],
    service: ["hey", "hey2"],
    labels: [undefined, { team: "ops" }],
    // Where the sources are on this machine, and which commit holds them, build nothing new:
    // the content does.
    "context.source": ["git", "dir"],
    "context.path": ["/src/hey", "/home/ci/hey"],
    "context.commit": ["a".repeat(40), "b".repeat(40)],
    "context.subdir": [undefined, "apps/web"],
    "context.hash": ["git-tree:1", "git-tree:2"],
    dockerfile: ["Dockerfile", "Dockerfile.production"],
    dockerfileHash: ["git-blob:1", "git-blob:2"],
    target: [undefined, "production"],
    args: [undefined, { RUBY_VERSION: "3.4" }],
    secrets: [undefined, { GITHUB_TOKEN: "t" }],
    ssh: [undefined, ["default"]],
    platforms: [undefined, ["linux/amd64"]],
    provenance: [undefined, "mode=max"],
    sbom: [undefined, true],
    push: [true, false],
    driver: ["docker", "docker-container"],
    remote: [{ connection }, { connection: { ...connection, host: "10.0.0.2" } }],
    local: [true, false],
    cache: [undefined, { type: "inline" }],
    noCache: [false, true],
    registry: REGISTRY,
    timeout: [1800, "10m"],
  },
};

const HANDLERS = { app, traefik, envFile, accessory, release, hook, image };

function withField(base: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split(".");
  if (rest.length === 0) {
    const { [head]: _, ...others } = base;
    return value === undefined ? others : { ...others, [head]: value };
  }
  return { ...base, [head]: withField((base[head] as Record<string, unknown>) ?? {}, rest.join("."), value) };
}

describe("every schema field's declared effect", () => {
  for (const kind of Object.keys(schemas) as Kind[]) {
    const declared = declaredEffects(schemas[kind]);
    it(`${kind}: every field has a row`, () => {
      expect([...declared.keys()].sort()).toEqual(Object.keys(ROWS[kind]).sort());
    });
    for (const [path, effect] of declared) {
      it(`${kind}.${path} → ${effect}`, () => {
        const [a, b] = ROWS[kind][path] ?? [];
        const olds = { ...withField(BASE[kind], path, a), status: kind === "envFile" ? undefined : "running" };
        const news = withField(BASE[kind], path, b);
        // Both values are valid: the row tests the effect, not validation.
        expect(schemas[kind].safeParse(news).success, JSON.stringify(news)).toBe(true);
        const p = plan(schemas[kind], olds, news);
        expect([...p.changed.entries()]).toEqual([[path, effect]]);
        const d = HANDLERS[kind].diff("id", olds, news);
        expect(d.changes).toBe(true);
        expect(d.replaces).toEqual(effect === "replace" ? [path.split(".")[0]] : []);
        expect(mustAct(schemas[kind], olds, news)).toBe(effect !== "record");
        // The same value again is no change.
        expect(plan(schemas[kind], news, news).changed.size).toBe(0);
      });
    }
  }

  it("a health check added or removed is a swap", () => {
    const worker = { ...BASE.app, traefik: false, healthcheck: undefined };
    expect([...plan(schemas.app, { ...worker, status: "running" }, { ...worker, healthcheck: { cmd: "true" } }).changed]).toEqual([["healthcheck", "swap"]]);
    expect([...plan(schemas.app, { ...worker, healthcheck: { cmd: "true" } }, worker).changed]).toEqual([["healthcheck", "swap"]]);
  });

  it("no effect is left undeclared: each kind acts in its own way", () => {
    const effects = (k: Kind) => new Set([...declaredEffects(schemas[k]).values()]);
    expect([...effects("app")].sort()).toEqual<Effect[]>(["record", "replace", "reroute", "swap"]);
    expect([...effects("traefik")].sort()).toEqual<Effect[]>(["record", "replace", "restart"]);
    // Its route (Kamal 2's accessory proxy) is rewritten without touching the container.
    expect([...effects("accessory")].sort()).toEqual<Effect[]>(["reboot", "record", "replace", "reroute"]);
    expect([...effects("envFile")].sort()).toEqual<Effect[]>(["record", "replace", "rewrite"]);
    // Where a release command runs moves nothing: no field replaces it.
    expect([...effects("release")].sort()).toEqual<Effect[]>(["record", "rerun"]);
    expect([...effects("hook")].sort()).toEqual<Effect[]>(["record", "rerun"]);
    // Nothing about an image build touches a host: it builds, or only records.
    expect([...effects("image")].sort()).toEqual<Effect[]>(["build", "record"]);
  });

  it("a digest no longer given is no change: the host keeps the image it runs", () => {
    const pinned = { ...BASE.app, digest: DIGEST("a"), status: "running" };
    expect(app.diff("id", pinned, { ...BASE.app }).changes).toBe(false);
    expect([...plan(schemas.app, pinned, { ...BASE.app, digest: DIGEST("b") }).changed]).toEqual([["digest", "swap"]]);
  });
});

describe("the same value written another way is no change", () => {
  const olds = { ...BASE.app, healthcheck: { path: "/up", interval: 1 }, status: "running" };
  it.each([
    ["a duration as a string", { healthcheck: { path: "/up", interval: "1s" } }],
    ["a duration in ms", { healthcheck: { path: "/up", interval: "1000ms" } }],
    ["defaults written out", { healthcheck: { path: "/up", interval: 1, retries: 3, port: 80 }, stopWaitTime: 30, retain: 5, appPort: 80, env: {}, labels: {}, volumes: [] }],
    ["an ssh default written out", { connection: { ...connection, port: 22, user: "root", connectTimeout: "15s" } }],
  ])("%s", (_what, over) => {
    const news = { ...BASE.app, ...over };
    expect(app.diff("id", olds, news)).toEqual({ changes: false, replaces: [] });
  });
});

describe("Traefik's takeover note", () => {
  it("is kept as first recorded: a later check carries it over, so the next up changes nothing", async () => {
    const olds = { ...BASE.traefik, takeover: "Kamal's Traefik (traefik:v2.11, not started by this provider): replaced by this one, routing what it routed" };
    const checked = await traefik.check(olds, { ...BASE.traefik });
    expect(checked.failures).toEqual([]);
    expect(checked.inputs).toEqual(olds);
    expect(traefik.diff("id", { ...olds, status: "running" }, checked.inputs).changes).toBe(false);
    // A user cannot set it.
    expect((await traefik.check(olds, { ...BASE.traefik, takeover: "anything" })).inputs.takeover).toBe(olds.takeover);
  });
});

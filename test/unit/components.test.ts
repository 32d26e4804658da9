/** Components wire inputs to resources: child types, names and inputs, under Pulumi mocks. */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Inputs with Pulumi's secret wrappers removed; secret paths noted as "<secret>:" keys. */
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (SECRET_SIG in o) return plain(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

function isSecret(v: unknown): boolean {
  return !!v && typeof v === "object" && SECRET_SIG in (v as object);
}

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name, inputs: { ...(plain(args.inputs) as object), __secret: Object.keys(args.inputs).filter((k) => isSecret(args.inputs[k])).sort() } });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    },
    "project",
    "stack",
    false,
  );
});

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
}

describe("Service", () => {
  it("creates one resource per role and host, env files for secret env, inputs merged", async () => {
    const { Service } = await import("../../components");
    registered.length = 0;
    new Service("hey", {
      image: "ghcr.io/acme/hey",
      version: "v7",
      ssh: { user: "deploy", privateKey: pulumi.secret("KEY"), knownHosts: "kh" },
      env: { clear: { RAILS_ENV: "production" }, secret: { TOKEN: pulumi.secret("s3cret") } },
      labels: { owner: "platform" },
      healthcheck: { path: "/health", deadline: 90 },
      appPort: 3000,
      roles: {
        web: { hosts: ["10.0.0.1", { name: "web-2", address: "10.0.0.2", env: { clear: { CANARY: "1" } } }] },
        workers: { hosts: ["10.0.0.3"], cmd: "bin/jobs", env: { clear: { QUEUE: "all" } } },
      },
    });
    await settle();
    expect(registered.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
      "kamal:index:Service hey",
      "pulumi-nodejs:dynamic/kamal:AppContainer hey-web-10.0.0.1",
      "pulumi-nodejs:dynamic/kamal:AppContainer hey-web-web-2",
      "pulumi-nodejs:dynamic/kamal:AppContainer hey-workers-10.0.0.3",
      "pulumi-nodejs:dynamic/kamal:EnvFile hey-env-web-10.0.0.1",
      "pulumi-nodejs:dynamic/kamal:EnvFile hey-env-web-web-2",
      "pulumi-nodejs:dynamic/kamal:EnvFile hey-env-workers-10.0.0.3",
    ]);
    const web2 = registered.find((r) => r.name === "hey-web-web-2")!.inputs;
    expect(web2).toMatchObject({
      hostName: "web-2",
      connection: { host: "10.0.0.2", user: "deploy", privateKey: "KEY", knownHosts: "kh" },
      service: "hey",
      role: "web",
      image: "ghcr.io/acme/hey",
      version: "v7",
      env: { RAILS_ENV: "production", CANARY: "1" },
      labels: { owner: "platform" },
      traefik: true,
      appPort: 3000,
      healthcheck: { path: "/health", deadline: 90, port: 3000 },
    });
    // The private key makes the whole connection secret; the env file's env is secret.
    expect(web2.__secret).toEqual(["connection"]);
    const workers = registered.find((r) => r.name === "hey-workers-10.0.0.3")!.inputs;
    expect(workers).toMatchObject({ role: "workers", cmd: "bin/jobs", traefik: false, env: { RAILS_ENV: "production", QUEUE: "all" } });
    expect(workers.healthcheck).toBeUndefined();
    const envFile = registered.find((r) => r.name === "hey-env-workers-10.0.0.3")!.inputs;
    expect(envFile).toMatchObject({ path: ".kamal/env/roles/hey-workers.env", env: { TOKEN: "s3cret" }, hostName: "10.0.0.3" });
    expect(envFile.__secret).toEqual(["connection", "env"]);
  });
});

describe("Service route settings", () => {
  const KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
  const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  it("passes the service's proxy settings to every role behind Traefik, a role's over them; the key a secret; maintenance on", async () => {
    const { Service } = await import("../../components");
    registered.length = 0;
    new Service("shop", {
      image: "ghcr.io/acme/shop",
      version: "v1",
      ssh: {},
      proxy: { host: "shop.example.com", ssl: { certificatePem: CERT, privateKeyPem: KEY }, responseTimeout: 30 },
      maintenance: { message: "soon" },
      roles: {
        web: { hosts: ["a", "b"] },
        api: { hosts: ["a"], traefik: true, proxy: { pathPrefix: "/api,/oauth", stripPathPrefix: false } },
        jobs: { hosts: ["b"], cmd: "bin/jobs" },
      },
    });
    await settle();
    const web = registered.find((r) => r.name === "shop-web-a")!.inputs;
    expect(web).toMatchObject({ routeHosts: ["shop.example.com"], proxy: { ssl: { certificatePem: CERT, privateKeyPem: KEY }, responseTimeout: 30 }, maintenance: { message: "soon" } });
    const api = registered.find((r) => r.name === "shop-api-a")!.inputs;
    // The role names no host: the service's; its prefixes split as Kamal's path_prefix.
    expect(api).toMatchObject({ routeHosts: ["shop.example.com"], proxy: { pathPrefixes: ["/api", "/oauth"], stripPathPrefix: false, responseTimeout: 30 } });
    const jobs = registered.find((r) => r.name === "shop-jobs-b")!.inputs;
    expect([jobs.proxy, jobs.maintenance, jobs.routeHosts]).toEqual([undefined, undefined, undefined]);
  });

  it("boots the roles after the primary one together on a host, or one after another (Kamal's parallel_roles false)", async () => {
    const { Service } = await import("../../components");
    const order = async (parallelRoles?: boolean) => {
      const deps: Record<string, string[]> = {};
      new Service(`ord${parallelRoles}`, {
        image: "ghcr.io/acme/shop",
        version: "v1",
        ssh: {},
        parallelRoles,
        roles: { web: { hosts: ["a", "b"] }, jobs: { hosts: ["a", "b"] }, mail: { hosts: ["a"] } },
      }, {
        transformations: [(t) => {
          if (t.type.endsWith(":AppContainer")) deps[t.name.replace(/^ord\w+-/, "")] = (t.opts.dependsOn as pulumi.Resource[] | undefined ?? []).map((r) => (r as unknown as { __name: string }).__name.replace(/^ord\w+-/, "")).sort();
          return undefined;
        }],
      });
      await settle();
      return deps;
    };
    expect(await order()).toEqual({ "web-a": [], "web-b": [], "jobs-a": ["web-a", "web-b"], "jobs-b": ["web-a", "web-b"], "mail-a": ["web-a", "web-b"] });
    expect(await order(false)).toEqual({ "web-a": [], "web-b": [], "jobs-a": ["web-a", "web-b"], "jobs-b": ["web-a", "web-b"], "mail-a": ["jobs-a", "web-a", "web-b"] });
  });

  it("gives the routed containers only the error pages that replace Traefik's own errors", async () => {
    const { Service } = await import("../../components");
    new Service("pages", { image: "i", version: "v1", ssh: {}, errorPages: { "404": "<p>gone</p>", "502": "<p>down</p>" }, roles: { web: { hosts: ["a"] }, jobs: { hosts: ["a"], traefik: false } } });
    new Service("apppages", { image: "i", version: "v1", ssh: {}, errorPages: { "404": "<p>gone</p>", "500": "<p>oops</p>" }, roles: { web: { hosts: ["a"] } } });
    await settle();
    const pagesOf = (name: string) => registered.find((r) => r.name === name)!.inputs.errorPages;
    expect([pagesOf("pages-web-a"), pagesOf("pages-jobs-a"), pagesOf("apppages-web-a")]).toEqual([{ "502": "<p>down</p>" }, undefined, undefined]);
  });

  it("records the primary role on its containers only where the default rule would pick another", async () => {
    const { Service } = await import("../../components");
    new Service("prim", { image: "i", version: "v1", ssh: {}, primaryRole: "jobs", roles: { web: { hosts: ["a"] }, jobs: { hosts: ["a", "b"] } } });
    new Service("dflt", { image: "i", version: "v1", ssh: {}, roles: { web: { hosts: ["a"] }, jobs: { hosts: ["a"] } } });
    await settle();
    const primaryOf = (prefix: string) =>
      Object.fromEntries(registered.filter((r) => r.type.endsWith(":AppContainer") && r.name.startsWith(prefix)).map((r) => [r.name, r.inputs.primary]));
    expect(primaryOf("prim-")).toEqual({ "prim-web-a": undefined, "prim-jobs-a": true, "prim-jobs-b": true });
    expect(primaryOf("dflt-")).toEqual({ "dflt-web-a": undefined, "dflt-jobs-a": undefined });
  });

  it("refuses ssl from the ACME CA on a role with several hosts, and lets two roles share a host name under different prefixes", async () => {
    const { Service } = await import("../../components");
    expect(() => new Service("one", { image: "i", version: "v1", ssh: {}, proxy: { host: "x.example.com", ssl: true }, roles: { web: { hosts: ["a", "b"] } } })).toThrow(
      'Service "one": roles.web.proxy.ssl: a certificate from the ACME CA serves one host, and the role has 2: give the role its own certificate (ssl: { certificatePem, privateKeyPem }) to serve it from several',
    );
    expect(
      () => new Service("two", { image: "i", version: "v1", ssh: {}, proxy: { host: "x.example.com" }, roles: { web: { hosts: ["a"] }, api: { hosts: ["a"], traefik: true, proxy: { pathPrefix: "/api" } } } }),
    ).not.toThrow();
    expect(() => new Service("three", { image: "i", version: "v1", ssh: {}, proxy: { host: "x.example.com" }, roles: { web: { hosts: ["a"] }, api: { hosts: ["a"], traefik: true } } })).toThrow(
      'Service "three": roles.api.proxy: claims the route Host(`x.example.com`) on host "a" as role "web" does: give one its own proxy host',
    );
    await settle();
  });
});

describe("Traefik, Accessory and KamalApp", () => {
  it("creates Traefik per host and an accessory with its env file", async () => {
    const { Accessory, Traefik } = await import("../../components");
    registered.length = 0;
    new Traefik("traefik", { hosts: ["a", "b"], ssh: {}, image: "traefik:v3.6", args: { accesslog: true } });
    new Accessory("db", {
      service: "hey",
      image: "postgres:17",
      hosts: ["c"],
      ssh: {},
      port: 5432,
      env: { secret: { POSTGRES_PASSWORD: pulumi.secret("pw") } },
      directories: ["data:/var/lib/postgresql/data"],
    });
    await settle();
    expect(registered.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
      "kamal:index:Accessory db",
      "kamal:index:Traefik traefik",
      "pulumi-nodejs:dynamic/kamal:AccessoryContainer db-c",
      "pulumi-nodejs:dynamic/kamal:EnvFile db-env-c",
      "pulumi-nodejs:dynamic/kamal:TraefikContainer traefik-a",
      "pulumi-nodejs:dynamic/kamal:TraefikContainer traefik-b",
    ]);
    expect(registered.find((r) => r.name === "db-c")!.inputs).toMatchObject({
      service: "hey",
      name: "db",
      image: "postgres:17",
      port: 5432,
      directories: ["data:/var/lib/postgresql/data"],
    });
    expect(registered.find((r) => r.name === "db-env-c")!.inputs).toMatchObject({ path: ".kamal/env/accessories/hey-db.env" });
  });

  it("turns examples/kamal/config/deploy.yml into the same components", async () => {
    const { KamalApp } = await import("../../components");
    registered.length = 0;
    new KamalApp("hello", {
      configFile: `${__dirname}/../../examples/kamal/config/deploy.yml`,
      version: "v1",
      secrets: { KAMAL_REGISTRY_PASSWORD: "r", API_TOKEN: "a", STORE_PASSWORD: "s" },
    });
    await settle();
    expect(registered.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
      "kamal:index:Accessory hello-store",
      "kamal:index:KamalApp hello",
      "kamal:index:Service hello",
      "kamal:index:Traefik hello-traefik",
      "pulumi-nodejs:dynamic/kamal:AccessoryContainer hello-store-10.213.0.13",
      "pulumi-nodejs:dynamic/kamal:AppContainer hello-web-10.213.0.11",
      "pulumi-nodejs:dynamic/kamal:AppContainer hello-web-10.213.0.12",
      "pulumi-nodejs:dynamic/kamal:AppContainer hello-workers-10.213.0.12",
      "pulumi-nodejs:dynamic/kamal:EnvFile hello-env-web-10.213.0.11",
      "pulumi-nodejs:dynamic/kamal:EnvFile hello-env-web-10.213.0.12",
      "pulumi-nodejs:dynamic/kamal:EnvFile hello-env-workers-10.213.0.12",
      "pulumi-nodejs:dynamic/kamal:EnvFile hello-store-env-10.213.0.13",
      // The example's .kamal/hooks.
      "pulumi-nodejs:dynamic/kamal:Hook hello-hook-post-app-boot",
      "pulumi-nodejs:dynamic/kamal:Hook hello-hook-post-deploy",
      "pulumi-nodejs:dynamic/kamal:Hook hello-hook-pre-app-boot",
      "pulumi-nodejs:dynamic/kamal:Hook hello-hook-pre-connect",
      "pulumi-nodejs:dynamic/kamal:Hook hello-hook-pre-deploy",
      "pulumi-nodejs:dynamic/kamal:TraefikContainer hello-traefik-10.213.0.11",
      "pulumi-nodejs:dynamic/kamal:TraefikContainer hello-traefik-10.213.0.12",
    ]);
    expect(registered.find((r) => r.name === "hello-hook-pre-deploy")!.inputs).toMatchObject({
      name: "pre-deploy",
      env: { KAMAL_SERVICE: "hello", KAMAL_VERSION: "v1", KAMAL_SERVICE_VERSION: "hello@v1", KAMAL_HOSTS: "10.213.0.11,10.213.0.12,10.213.0.13", KAMAL_COMMAND: "deploy", KAMAL_LOCK: "true" },
    });
    expect(registered.find((r) => r.name === "hello-web-10.213.0.12")!.inputs).toMatchObject({
      image: "10.213.0.2:5000/kp/testapp",
      env: { TESTAPP_ECHO_ENV: "API_TOKEN", TESTAPP_UPSTREAM: "http://10.213.0.13:9000", CANARY: "true" },
      labels: { "example.com/team": "web" },
      healthcheck: { cmd: "/app probe http://127.0.0.1/up", port: 80, interval: 1, deadline: 28, path: "/up" },
      registry: { server: "10.213.0.2:5000", username: "kp-deployer", password: "r" },
      stopWaitTime: 10,
      retain: 3,
    });
  });

  it("Kamal 2: aliased secrets from .kamal/secrets, $(…) run only for secrets without a value, key_data a secret", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, existsSync } = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(os.tmpdir(), "kamal2-"));
    mkdirSync(path.join(dir, "config"));
    mkdirSync(path.join(dir, ".kamal"));
    // A key made for this test, never committed.
    const { generateKeyPairSync } = await import("node:crypto");
    const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString().trim();
    writeFileSync(
      path.join(dir, "config/deploy.yml"),
      [
        "service: k2", "image: acme/k2", "servers:", "  web:", "    - 10.0.0.9", "env:", "  secret:", "    - DB_PASSWORD:MAIN_DB_PASSWORD", "    - API_KEY",
        "ssh:", "  key_data:", `    - ${JSON.stringify(pem)}`,
        "accessories:", "  db:", "    image: postgres:17", "    host: 10.0.0.9", "    files:", "      - config/init.sql.erb:/docker-entrypoint-initdb.d/init.sql",
        "    env:", "      clear:", "        DB_NAME: k2", "      secret:", "        - POSTGRES_PASSWORD:MAIN_DB_PASSWORD",
      ].join("\n"),
    );
    writeFileSync(path.join(dir, ".kamal/secrets"), "MAIN_DB_PASSWORD=$(echo from-command)\nAPI_KEY=$(touch api-key-ran && echo k)\n");
    writeFileSync(path.join(dir, "config/init.sql.erb"), "CREATE DATABASE <%= ENV['DB_NAME'] %>; ALTER USER postgres PASSWORD '<%= ENV['POSTGRES_PASSWORD'] %>';\n");
    const { KamalApp } = await import("../../components");
    registered.length = 0;
    new KamalApp("k2", { configFile: path.join(dir, "config/deploy.yml"), version: "v1", secrets: { API_KEY: "given" }, hostKeys: { "10.0.0.9": "ssh-ed25519 AAAA" } });
    await settle();
    const envFile = registered.find((r) => r.type.endsWith("EnvFile") && r.name.includes("-env-web-"))!;
    expect(envFile.inputs).toMatchObject({ env: { DB_PASSWORD: "from-command", API_KEY: "given" } });
    expect(existsSync(path.join(dir, "api-key-ran"))).toBe(false);
    const web = registered.find((r) => r.name === "k2-web-10.0.0.9")!;
    expect(web.inputs).toMatchObject({ traefik: true, appPort: 80, healthcheck: { path: "/up", port: 80 } });
    expect(web.inputs.__secret).toContain("connection");
    // Kamal renders an accessory's .erb file with its env and secrets; the result is a secret.
    const db = registered.find((r) => r.type.endsWith("AccessoryContainer"))!;
    expect(db.inputs.files).toEqual([{ target: "/docker-entrypoint-initdb.d/init.sql", content: "CREATE DATABASE k2; ALTER USER postgres PASSWORD 'from-command';\n", mode: "755" }]);
    expect(db.inputs.__secret).toContain("files");
    expect(db.inputs.options).toEqual({ network: "kamal" });
  });

  it("Kamal 2: an accessory behind the proxy gets the route and a Traefik on its host", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(os.tmpdir(), "kamal2-acc-"));
    mkdirSync(path.join(dir, "config"));
    mkdirSync(path.join(dir, ".kamal"));
    writeFileSync(path.join(dir, ".kamal/secrets"), "");
    writeFileSync(
      path.join(dir, "config/deploy.yml"),
      ["service: k3", "image: acme/k3", "servers:", "  web:", "    - 10.0.0.9", "accessories:", "  panel:", "    image: grafana/grafana:11", "    host: 10.0.0.10",
        "    proxy:", "      host: panel.example.com", "      app_port: 3000"].join("\n"),
    );
    const { KamalApp } = await import("../../components");
    registered.length = 0;
    new KamalApp("k3", { configFile: path.join(dir, "config/deploy.yml"), version: "v1", hostKeys: { "10.0.0.9": "ssh-ed25519 AAAA", "10.0.0.10": "ssh-ed25519 AAAB" } });
    await settle();
    expect(registered.filter((r) => r.type.endsWith("TraefikContainer")).map((r) => r.name).sort()).toEqual(["k3-traefik-10.0.0.10", "k3-traefik-10.0.0.9"]);
    const panel = registered.find((r) => r.type.endsWith("AccessoryContainer"))!;
    expect(panel.inputs.proxy).toEqual({ hosts: ["panel.example.com"], appPort: 3000, ssl: false, pathPrefixes: undefined, responseTimeout: 30, forwardHeaders: true });
  });

  it("refuses a secrets file that does not exist", async () => {
    const { KamalApp } = await import("../../components");
    expect(
      () =>
        new KamalApp("missing-file", {
          configFile: `${__dirname}/../../examples/kamal/config/deploy.yml`,
          version: "v1",
          secretsFiles: [".kamal/secrets.nope"],
        }),
    ).toThrow("KamalApp: secrets file .kamal/secrets.nope does not exist");
  });

  it("names a missing secret, and never its value", async () => {
    const { KamalApp } = await import("../../components");
    expect(
      () =>
        new KamalApp("bad", {
          configFile: `${__dirname}/../../examples/kamal/config/deploy.yml`,
          version: "v1",
          secrets: { KAMAL_REGISTRY_PASSWORD: "r", STORE_PASSWORD: "s" },
          secretsFiles: [],
        }),
    ).toThrow(
      "KamalApp: env.secret: secret API_TOKEN has no value: set it with `pulumi config set --secret API_TOKEN …`, pass it in secrets, or name a secrets file in secretsFiles",
    );
  });
});

describe("the provider kept in state", () => {
  // Pinned: the text is stored in every stack's state, so it must never change between
  // releases and must name no path of any machine (a stack works from any checkout).
  const PINNED = [
    "exports.handler = function () {",
    '  var kind = "app", implementation;',
    "  function load() {",
    "    if (!implementation) {",
    "      try {",
    '        implementation = require(require.resolve("pulumi-kamal/provider", { paths: [process.cwd()] }));',
    "      } catch (e) {",
    '        if (e && e.code === "MODULE_NOT_FOUND" && String(e.message).indexOf("pulumi-kamal/provider") >= 0) {',
    '          throw new Error("pulumi-kamal is not installed in " + process.cwd() + ": run npm install there (the stack\'s resources are served by the package the project depends on)");',
    "        }",
    "        throw e;",
    "      }",
    "    }",
    "    return implementation.providers[kind];",
    "  }",
    "  return {",
    "    check: function () { var p = load(); return p.check.apply(p, arguments); },",
    "    diff: function () { var p = load(); return p.diff.apply(p, arguments); },",
    "    create: function () { var p = load(); return p.create.apply(p, arguments); },",
    "    read: function () { var p = load(); return p.read.apply(p, arguments); },",
    "    update: function () { var p = load(); return p.update.apply(p, arguments); },",
    "    delete: function () { var p = load(); return p.delete.apply(p, arguments); },",
    "  };",
    "};",
    "",
  ].join("\n");

  it("is a few stable lines, naming no path, that load the installed package by name", async () => {
    const { providerSource } = await import("../../provider/resources");
    expect(providerSource("app")).toBe(PINNED);
    expect(providerSource("traefik")).toBe(PINNED.replace('kind = "app"', 'kind = "traefik"'));
  });

  it("forwards to whatever the project has installed, and says so when nothing is", async () => {
    const { providerSource } = await import("../../provider/resources");
    const calls: unknown[][] = [];
    const installed = { providers: { app: { diff: (...a: unknown[]) => (calls.push(a), { changes: false }) } } };
    const load = (found: boolean) => {
      const mod = { exports: {} as { handler: () => Record<string, (...a: unknown[]) => unknown> } };
      const req = Object.assign(() => installed, {
        resolve: (id: string, opts: { paths: string[] }) => {
          expect(opts.paths).toEqual([process.cwd()]);
          if (found) return `/somewhere/${id}.js`;
          throw Object.assign(new Error(`Cannot find module '${id}'`), { code: "MODULE_NOT_FOUND" });
        },
      });
      new Function("exports", "require", "module", providerSource("app"))(mod.exports, req, mod);
      return mod.exports.handler();
    };
    expect(load(true).diff("id", { a: 1 }, { a: 2 })).toEqual({ changes: false });
    expect(calls).toEqual([["id", { a: 1 }, { a: 2 }]]);
    expect(() => load(false).diff("id", {}, {})).toThrow(`pulumi-kamal is not installed in ${process.cwd()}: run npm install there`);
  });
});

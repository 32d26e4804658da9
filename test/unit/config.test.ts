import { describe, expect, it } from "vitest";
import { validateShape } from "../../components/service";
import { accessoryContainer, appContainer, envFile, traefikContainer } from "../../provider/config/schemas";
import { UNKNOWN, validate } from "../../provider/handlers/common";
import { parseInputs } from "../../provider/config/fields";
import { pathOf as appPathOf } from "../../provider/handlers/app";

const base = {
  hostName: "web-1",
  connection: { host: "10.0.0.1" },
  service: "hey",
  role: "web",
  image: "registry.example.com/hey",
  version: "v1",
  traefik: true,
  healthcheck: { path: "/up" },
};

// The paths the Service component gives each resource's inputs.
const pathOf = appPathOf("web");

function reasons(news: Record<string, unknown>) {
  return validate(appContainer, news, pathOf).failures.map((f) => f.reason);
}

describe("config errors name the path and never the value", () => {
  it("accepts a valid role", () => {
    expect(reasons(base)).toEqual([]);
  });

  it("names no property to the engine, which would print its whole value (a key) beside the reason", () => {
    const { failures } = validate(appContainer, { ...base, connection: { host: "10.0.0.1", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----x", connectTimeout: "soon" } }, pathOf);
    expect(failures).toEqual([{ property: "", reason: 'ssh.connectTimeout: must be a number of seconds or a duration like "10s", "500ms", "2m"' }]);
  });

  it("reports each problem with its path", () => {
    expect(
      reasons({
        ...base,
        image: "registry.example.com/hey:latest",
        version: "v 1",
        healthcheck: { path: "up", intervall: 1 },
        env: { "BAD-KEY": "x", TOKEN: "line1\nsuper-secret-value" },
        volumes: ["/only-one-part"],
        stopWaitTime: "ten seconds",
        colour: "blue",
      }),
    ).toEqual([
      "image: must not include a tag: set the version separately",
      "version: must be a valid Docker tag (letters, digits, '_', '.', '-', at most 128)",
      "roles.web.env.BAD-KEY: must be a valid environment variable name",
      "roles.web.env.TOKEN: must not contain a newline or NUL",
      'roles.web.volumes.0: must be "host_path:container_path[:options]"',
      'roles.web.healthcheck.path: must start with "/"',
      "roles.web.healthcheck.intervall: is not a supported key",
      'roles.web.stopWaitTime: must be a number of seconds or a duration like "10s", "500ms", "2m"',
      "roles.web.colour: is not a supported key",
    ]);
  });

  it("refuses Traefik args that would turn off or move the API the swaps confirm routes with", () => {
    const traefik = { hostName: "web-1", connection: { host: "10.0.0.1" }, image: "traefik:v3.6", args: { "api.insecure": false, accesslog: true, "entryPoints.traefik.address": ":9000", "api.dashboard": true } };
    expect(validate(traefikContainer, traefik, (k) => k).failures.map((f) => f.reason)).toEqual([
      "args.api.insecure: is set by apiPort: swaps confirm every route change through Traefik's API (apiPort: 0 turns it off; swaps then fall back to Kamal 1's cord)",
      "args.entryPoints.traefik.address: is set by apiPort: swaps confirm every route change through Traefik's API (apiPort: 0 turns it off; swaps then fall back to Kamal 1's cord)",
    ]);
    // What Kamal 1 configs often repeat is fine.
    const repeated = { ...traefik, args: { "api.insecure": true, "api.dashboard": true, "entryPoints.traefik.address": ":8080" } };
    expect(validate(traefikContainer, repeated, (k) => k).failures).toEqual([]);
  });

  it("requires what has no default, and a health check behind Traefik", () => {
    const { version: _v, healthcheck: _h, ...rest } = base;
    expect(reasons(rest)).toEqual([
      "version: is required",
      "roles.web.healthcheck: is required for a role behind Traefik (traffic only moves to a healthy container)",
    ]);
    expect(reasons({ ...base, connection: { host: "10.0.0.1", prot: 22 } })).toEqual(["ssh.prot: is not a supported key"]);
    expect(reasons({ ...base, retain: 0 })).toEqual([
      "retainContainers: must be at least 1: going back to the previous version without a pull needs it on the host",
    ]);
  });

  it("does not judge values that are not known yet (preview)", () => {
    expect(reasons({ ...base, version: UNKNOWN, connection: UNKNOWN, env: { A: UNKNOWN } })).toEqual([]);
  });

  it("never echoes a value, even a bad one", () => {
    const secret = "hunter2-super-secret";
    const all = reasons({ ...base, env: { TOKEN: `${secret}\n` }, image: secret + ":x", version: secret + " " });
    expect(all.join("\n")).not.toContain(secret);
  });

  it("reports stored inputs that no longer parse as a ConfigError with paths", () => {
    expect(() => parseInputs(envFile, { hostName: "h", connection: { host: "h" }, path: "../x", env: {} })).toThrow(
      'path: must not contain ".."',
    );
    expect(() =>
      parseInputs(accessoryContainer, { hostName: "h", connection: { host: "h" }, service: "s", name: "db", image: "i", port: "55x" }),
    ).toThrow('port: must be like "5432", "5432:5432" or "127.0.0.1:5432:5432"');
  });
});

describe("Service shape", () => {
  const ssh = {};
  it("rejects what cannot become resources", () => {
    const svc = (roles: Record<string, unknown>, extra: Record<string, unknown> = {}) => () =>
      validateShape("hey", { image: "i", version: "v", ssh, roles, ...extra } as never);
    expect(svc({})).toThrow('Service "hey": roles: must define at least one role');
    expect(svc({ web: { hosts: [] } })).toThrow('Service "hey": roles.web.hosts: must list at least one host');
    expect(svc({ "we b": { hosts: ["a"] } })).toThrow(`Service "hey": roles.we b: role names may contain only letters, digits, '_', '.', '-'`);
    expect(svc({ web: { hosts: ["a", "a"] } })).toThrow('Service "hey": roles.web.hosts.1: lists host "a" twice');
    expect(svc({ web: { hosts: ["a"], traefik: true, healthcheck: false } })).toThrow(
      'Service "hey": roles.web.healthcheck: cannot be off for a role behind Traefik',
    );
    expect(svc({ web: { hosts: ["a"] } }, { primaryRole: "api" })).toThrow('Service "hey": primaryRole: names no role (roles: web)');
    expect(svc({ web: { hosts: ["a"] }, api: { hosts: ["b", "a"], traefik: true } })).toThrow(
      'Service "hey": roles.api.proxy: claims the route PathPrefix(`/`) on host "a" as role "web" does: give one its own proxy host',
    );
    expect(svc({ web: { hosts: ["a"] }, api: { hosts: ["a"], traefik: true, proxy: { host: "api.example.com" } } })).not.toThrow();
    expect(svc({ web: { hosts: ["a"] } }, { bootLimit: 0 })).toThrow('Service "hey": bootLimit: must be a positive integer or a percentage like "25%"');
    expect(svc({ web: { hosts: ["a"] } }, { release: { cmd: "bin/migrate", role: "jobs" } })).toThrow('Service "hey": release.role: names no role (roles: web)');
    expect(svc({ web: { hosts: ["a", "b"] } }, { canary: { hosts: 0 } })).toThrow('Service "hey": canary.hosts: must be a positive integer');
    expect(svc({ web: { hosts: ["a", "b"] } }, { canary: { hosts: 2 } })).toThrow(
      `Service "hey": canary.hosts: must be fewer than the primary role's hosts (role "web" has 2): the canaries go first, the rest after them`,
    );
    expect(svc({ web: { hosts: ["a", "b"] } }, { canary: { hosts: 1 } })).not.toThrow();
    expect(svc({ web: { hosts: ["a"] } }, { onFailure: "rollback" })).toThrow('Service "hey": onFailure: must be "stop" or "revert"');
  });

  it("boots the canaries first, then the rest in bootLimit batches", async () => {
    const { batchesOf } = await import("../../components/service");
    const of = (limit: number | `${number}%` | undefined, hosts: number, canaries: number) => Array.from({ length: hosts }, (_, i) => batchesOf(limit, hosts, canaries)(i));
    expect(of(undefined, 4, 0)).toEqual([0, 0, 0, 0]);
    expect(of(2, 5, 0)).toEqual([0, 0, 1, 1, 2]);
    expect(of(undefined, 4, 1)).toEqual([0, 1, 1, 1]);
    expect(of(1, 3, 1)).toEqual([0, 1, 2]);
    expect(of("50%", 5, 2)).toEqual([0, 0, 1, 1, 1]);
  });
});

describe("diffs", () => {
  it("name what changed, cope with unknown values, and move state off an old provider text", async () => {
    const app = await import("../../provider/handlers/app");
    const olds = { ...base, healthcheck: { path: "/up", deadline: 30 }, status: "running", __provider: "same text" };
    const same = { ...base, healthcheck: { path: "/up", deadline: 30 }, __provider: "same text" };
    expect(app.diff("id", olds, same)).toEqual({ changes: false, replaces: [] });
    // An earlier release stored a text naming a path on some machine: one record-only update.
    expect(app.diff("id", olds, { ...same, __provider: "new text" })).toEqual({ changes: true, replaces: [] });
    expect(app.diff("id", olds, { ...same, healthcheck: { path: "/up", deadline: 90 } })).toEqual({ changes: true, replaces: [] });
    expect(app.diff("id", olds, { ...same, healthcheck: UNKNOWN })).toEqual({ changes: true, replaces: [] });
    // Not known yet is a change, never yet a replacement.
    expect(app.diff("id", olds, { ...same, connection: UNKNOWN })).toEqual({ changes: true, replaces: [] });
    expect(app.diff("id", olds, { ...same, connection: { host: UNKNOWN } })).toEqual({ changes: true, replaces: [] });
    expect(app.diff("id", olds, { ...same, connection: { host: "10.0.0.9" } })).toEqual({ changes: true, replaces: ["connection"] });
    expect(app.diff("id", { ...olds, status: "missing" }, same)).toEqual({ changes: true, replaces: [] });
  });

  it("read a rollout's members as records, and an earlier release's \"role/host@phase\" as the same records: no change", async () => {
    const app = await import("../../provider/handlers/app");
    const records = { group: "hey-diffs", members: [{ role: "web", host: "web-1", phase: 0 }, { role: "web", host: "web-2", phase: 1 }] };
    const strings = { group: "hey-diffs", members: ["web/web-1@0", "web/web-2@1"] };
    expect(appContainer.shape.rollout.parse(strings)).toEqual(records);
    const olds = { ...base, rollout: strings, status: "running", __provider: "same text" };
    expect(app.diff("id", olds, { ...base, rollout: records, __provider: "same text" })).toEqual({ changes: false, replaces: [] });
    expect(app.diff("id", olds, { ...base, rollout: { ...records, members: [records.members[0], { ...records.members[1], phase: 2 }] }, __provider: "same text" })).toEqual({ changes: true, replaces: [] });
  });
});

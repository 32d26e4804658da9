/**
 * Production correctness on shared hosts, with the real Pulumi engine: production (no
 * destination) and staging (a destination on its own host name) of one service, each its
 * own stack, Traefik in a third. Each one's deploy, failed deploy, rollback and destroy
 * leave the other untouched under load; names and routes cannot collide; retention keeps
 * versions, not copies; plain-string secrets stay out of state, previews and errors.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { httpGet } from "../../testbed/http";
import { startLoad, type LoadResult } from "../../testbed/load";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { host, registryFault, repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
const STAGING_HOST = "staging.kpiso.test";
const web = ["app1", "app2"];
const TOKENS = Array.from({ length: 8 }, (_, i) => `tok-plain-${i}-9c41e7`);
let dir: string;
const stacks: Record<"infra" | "prod" | "staging", PulumiProject> = {} as never;

type Target = "prod" | "staging";
const urlOf = (h: string) => `http://${host(h).address}/version`;
const headersOf = (t: Target) => (t === "staging" ? { host: STAGING_HOST } : undefined);

async function served(t: Target, h: string): Promise<{ version: string; container: string; env?: Record<string, string> }> {
  const r = await httpGet(urlOf(h), { host: headersOf(t)?.host });
  expect(r.status, `${t} on ${h}: ${r.body}`).toBe(200);
  return JSON.parse(r.body);
}

/** The program reads its token from `<stack>.token`, as from a secrets file. */
function setToken(p: PulumiProject, value: string) {
  writeFileSync(path.join(p.dir, `${p.stack}.token`), value);
}

async function set(p: PulumiProject, key: string, value: string) {
  const r = await p.run(["config", "set", "--plaintext", "--stack", p.stack, key, value]);
  expect(r.code, r.stderr).toBe(0);
}

/** Runs `fn` under load on both production and staging; returns each side's counts. */
async function underLoad<T>(fn: () => Promise<T>): Promise<{ result: T; load: Record<Target, LoadResult[]> }> {
  const start = (t: Target) =>
    web.flatMap((h) => [
      startLoad({ url: urlOf(h), rate: 60, connections: 3, headers: headersOf(t) }),
      startLoad({ url: urlOf(h), rate: 20, newConnections: true, headers: headersOf(t) }),
    ]);
  const loads = { prod: start("prod"), staging: start("staging") };
  await new Promise((r) => setTimeout(r, 500));
  const result = await fn();
  await new Promise((r) => setTimeout(r, 500));
  return {
    result,
    load: { prod: await Promise.all(loads.prod.map((l) => l.stop())), staging: await Promise.all(loads.staging.map((l) => l.stop())) },
  };
}

function failed(load: LoadResult[]): number {
  const n = load.reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0);
  if (n > 0) console.error("failed requests:", JSON.stringify(load.map((l) => ({ ...l, samples: l.samples.slice(0, 5) }))));
  return n;
}
const total = (load: LoadResult[]) => load.reduce((n, l) => n + l.total, 0);
const out = (r: PulumiRun) => r.stdout + r.stderr;

async function containerIds(h: string, filter: string): Promise<string> {
  const conn = await pool.connect(target(h));
  return (await conn.exec(onHost(`docker ps -a --filter ${filter} --format '{{.ID}} {{.Names}}' | sort`))).stdout;
}

async function names(h: string): Promise<string[]> {
  const conn = await pool.connect(target(h));
  return (await conn.exec(onHost("docker ps -a --format '{{.Names}}'"))).stdout.split("\n").filter(Boolean).sort();
}

beforeAll(async () => {
  for (const h of ["app1", "app2", "db1"]) {
    const conn = await pool.connect(target(h));
    await conn.exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal /root/kpiso-*"));
  }
  dir = scratchProject("scopes", {
    "Pulumi.yaml": "name: kp-scopes\nruntime: nodejs\n",
    "package.json": JSON.stringify({ name: "kp-scopes", main: "index.ts" }),
    "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/scoped"))};\n`,
  });
  for (const s of ["infra", "prod", "staging"] as const) {
    stacks[s] = new PulumiProject(dir, s);
    await stacks[s].ensureStack();
  }
  await set(stacks.infra, "infra", "true");
  for (const s of ["prod", "staging"] as const) {
    await set(stacks[s], "version", "v1");
    setToken(stacks[s], TOKENS[0]);
  }
  await set(stacks.prod, "retain", "1");
  await set(stacks.prod, "accessory", "cache");
  await set(stacks.staging, "destination", "staging");
  await set(stacks.staging, "routeHost", STAGING_HOST);
  // Staging is routed by labels (Kamal 1's way), production by its route file.
  await set(stacks.staging, "labelRouting", "true");
});

afterAll(async () => {
  registryFault("start");
  pool.closeAll();
});

describe("production and staging of one service on the same hosts", () => {
  it("deploy side by side, each on its own route", async () => {
    for (const s of ["infra", "prod", "staging"] as const) {
      const up = await stacks[s].up();
      expect(up.code, out(up)).toBe(0);
    }
    for (const h of web) {
      expect((await served("prod", h)).container).toBe("kpiso-web-v1");
      expect((await served("staging", h)).container).toBe("kpiso-web-staging-v1");
    }
    const labels = (await (await pool.connect(target("app1"))).exec(onHost("docker inspect kpiso-web-v1 --format '{{json .Config.Labels}}'"))).stdout;
    expect(JSON.parse(labels)).toMatchObject({ service: "kpiso", role: "web", destination: "", version: "v1" });
  });

  for (const [side, other] of [["staging", "prod"], ["prod", "staging"]] as const) {
    it(`${side}: deploy, failed deploy and rollback leave ${other} untouched, 0 failed requests on both`, async () => {
      const filter = other === "prod" ? "name=kpiso-web-v" : "label=destination=staging";
      const before = await Promise.all(web.map((h) => containerIds(h, filter)));
      for (const [version, ok] of [["v2", true], ["broken", false], ["v1", true]] as const) {
        await set(stacks[side], "version", version);
        const { result: up, load } = await underLoad(() => stacks[side].up());
        expect(up.code === 0, `${side} ${version}: ${out(up)}`).toBe(ok);
        expect(total(load[other])).toBeGreaterThan(500);
        expect(failed(load[other]), `${other} during ${side} ${version}`).toBe(0);
        expect(failed(load[side]), `${side} during its own ${version}`).toBe(0);
        expect(out(up)).not.toMatch(other === "prod" ? /stopping kpiso-web-v|pruning kpiso-web-v/ : /kpiso-web-staging/);
      }
      expect(await Promise.all(web.map((h) => containerIds(h, filter)))).toEqual(before);
      for (const h of web) expect((await served(side, h)).version).toBe("v1");
    });
  }

  it("refuses, at preview, a scope that would take over another's route or names, naming both", async () => {
    const clash = new PulumiProject(dir, "clash");
    await clash.ensureStack();
    await set(clash, "version", "v1");
    setToken(clash, TOKENS[0]);
    await set(clash, "destination", "qa");
    let preview = await clash.preview();
    expect(preview.code).not.toBe(0);
    expect(out(preview)).toContain(
      'roles.web.proxy.hosts: service "kpiso" role "web" destination "qa" and service "kpiso" role "web" (no destination) (container kpiso-web-v1) both claim the route PathPrefix(`/`) on host app'
    );
    await set(clash, "service", "kpiso-web");
    await set(clash, "role", "staging");
    await set(clash, "routeHost", "other.kpiso.test");
    await clash.run(["config", "rm", "--stack", "clash", "destination"]);
    preview = await clash.preview();
    expect(preview.code).not.toBe(0);
    expect(out(preview)).toContain(
      'service "kpiso-web" role "staging" (no destination) and service "kpiso" role "web" destination "staging" would both name their containers "kpiso-web-staging-<version>" on host app',
    );
    const rm = await clash.run(["stack", "rm", "--yes", "--stack", "clash"]);
    expect(rm.code, out(rm)).toBe(0);
  });

  it("renaming the destination retires the old scope's containers in the same up, drained", async () => {
    await set(stacks.staging, "destination", "preview");
    const { result: up, load } = await underLoad(() => stacks.staging.up());
    expect(up.code, out(up)).toBe(0);
    expect(failed(load.prod)).toBe(0);
    expect(failed(load.staging)).toBe(0);
    expect(out(up)).toMatch(/cutting the cord of kpiso-web-staging-v1/);
    for (const h of web) {
      expect((await served("staging", h)).container).toBe("kpiso-web-preview-v1");
      expect((await names(h)).filter((n) => n.startsWith("kpiso-web-staging"))).toEqual([]);
    }
  });

  it("destroying staging leaves production serving: 0 failed requests on it", async () => {
    const { result: destroy, load } = await underLoad(() => stacks.staging.destroy());
    expect(destroy.code, out(destroy)).toBe(0);
    expect(failed(load.prod)).toBe(0);
    for (const h of web) {
      expect((await names(h)).filter((n) => n.startsWith("kpiso-web-preview"))).toEqual([]);
      expect((await served("prod", h)).container).toBe("kpiso-web-v1");
    }
  });
});

describe("retention by version", () => {
  // One sequence, split so that each step has its own time limit (twelve updates in all).
  const up = () => stacks.prod.up();

  it("v1 → v2 → six secret rotations: the last token serves", async () => {
    const prod = stacks.prod;
    await set(prod, "version", "v2");
    expect((await up()).code).toBe(0);
    for (let i = 1; i <= 6; i++) {
      setToken(prod, TOKENS[i]);
      const r = await up();
      expect(r.code, out(r)).toBe(0);
    }
    for (const h of web) expect((await served("prod", h)).env).toEqual({ SECRET_TOKEN: TOKENS[6] });
  });

  it("→ two failed deploys: v2 serves, and what stays is v1 (retain 1), v2 and the newest failed one", async () => {
    await set(stacks.prod, "version", "broken");
    for (let i = 0; i < 2; i++) expect((await up()).code).not.toBe(0);
    for (const h of web) {
      const kept = (await names(h)).filter((n) => n.startsWith("kpiso-web-"));
      expect(kept.map((n) => n.replace(/_failed_[0-9a-f]+$/, "_failed_*"))).toEqual(["kpiso-web-broken_failed_*", "kpiso-web-v1", "kpiso-web-v2"]);
    }
  });

  it("→ v1 and v2 with the registry stopped: no pull, 0 failed", async () => {
    const prod = stacks.prod;
    registryFault("stop");
    try {
      for (const version of ["v1", "v2"]) {
        await set(prod, "version", version);
        const { result, load } = await underLoad(up);
        expect(result.code, out(result)).toBe(0);
        expect(failed(load.prod)).toBe(0);
        expect(out(result)).not.toMatch(/pulling /);
        const pulled = await prod.run(["stack", "output", "pulled", "--json", "--stack", "prod"]);
        expect(JSON.parse(pulled.stdout)).toEqual([false, false]);
        for (const h of web) expect((await served("prod", h)).version).toBe(version);
      }
    } finally {
      registryFault("start");
    }
  });
});

describe("secrets given as plain strings", () => {
  function filesUnder(d: string): string[] {
    return readdirSync(d).flatMap((f) => {
      const p = path.join(d, f);
      return statSync(p).isDirectory() ? filesUnder(p) : [p];
    });
  }

  it("are never in the state, a preview, or an error (app or accessory)", async () => {
    const prod = stacks.prod;
    const key = readFileSync(sandbox().hosts[0].privateKeyPath, "utf8").trim();
    const keyLine = key.split("\n")[1];
    const plain = [...TOKENS, sandbox().registry.password, keyLine];
    setToken(prod, TOKENS[7]);
    const preview = await prod.preview();
    expect(preview.code, out(preview)).toBe(0);
    // An app that logs its secret while failing, and an accessory that does the same.
    await set(prod, "version", "broken");
    await set(prod, "leakEnv", "SECRET_TOKEN");
    const failedApp = await prod.up();
    expect(failedApp.code).not.toBe(0);
    expect(out(failedApp)).toContain("SECRET_TOKEN=[REDACTED]");
    await set(prod, "version", "v2");
    await prod.run(["config", "rm", "--stack", "prod", "leakEnv"]);
    await set(prod, "accessoryMode", "exit");
    const failedAccessory = await prod.up();
    expect(failedAccessory.code).not.toBe(0);
    expect(out(failedAccessory)).toMatch(/accessory kpiso-production-cache (is (exited|restarting)|restarted \d+ time\(s\)) after booting/);
    // Prepared first, and put back when the new one does not stay up.
    expect(out(failedAccessory)).toMatch(/the new container was kept as kpiso-production-cache_failed_[0-9a-f]{8}; the previous kpiso-production-cache runs again with its data/);
    expect(out(failedAccessory)).toContain("DB_PASSWORD=[REDACTED]");
    await prod.run(["config", "rm", "--stack", "prod", "accessoryMode"]);
    const exported = await prod.run(["stack", "export", "--stack", "prod"]);
    for (const s of plain) {
      for (const text of [out(preview), out(failedApp), out(failedAccessory), exported.stdout]) expect(text.includes(s), s).toBe(false);
      for (const file of filesUnder(path.join(dir, ".pulumi-state"))) expect(readFileSync(file, "utf8").includes(s), `${s} in ${file}`).toBe(false);
    }
    const repaired = await prod.up();
    expect(repaired.code, out(repaired)).toBe(0);
  });

  it("a value written another way, or a default written out, previews no change", async () => {
    const prod = stacks.prod;
    await set(prod, "interval", "1s");
    await set(prod, "spellDefaults", "true");
    const preview = await prod.preview(["--expect-no-changes"]);
    expect(preview.code, out(preview)).toBe(0);
  });
});

describe("destroying production", () => {
  it("leaves staging serving: 0 failed requests on it; then everything is gone", async () => {
    const up = await stacks.staging.up();
    expect(up.code, out(up)).toBe(0);
    const { result: destroy, load } = await underLoad(() => stacks.prod.destroy());
    expect(destroy.code, out(destroy)).toBe(0);
    expect(failed(load.staging)).toBe(0);
    for (const h of web) expect((await served("staging", h)).container).toBe("kpiso-web-preview-v1");
    for (const s of ["staging", "infra"] as const) {
      const d = await stacks[s].destroy();
      expect(d.code, out(d)).toBe(0);
    }
    for (const h of web) expect(await names(h)).toEqual([]);
  });
});

/**
 * Real Kamal configs from public projects (test/fixtures/kamal-corpus: each set as published,
 * with its repository, paths and commit in SOURCE.json): every base file and every destination
 * loads the way Kamal would read it, or fails with the reason Kamal would give. The expected
 * outcome of each is kept in __snapshots__/corpus.test.ts.snap, reviewed by hand against
 * Kamal's own rules (lib/kamal/configuration in basecamp/kamal); a loader change that alters
 * any of them shows in review.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { envNamesRead, loadKamalConfig } from "../../kamal/config";
import { type KamalConfig } from "../../kamal/model";

const corpus = path.resolve(__dirname, "../fixtures/kamal-corpus");
const sets = readdirSync(corpus).filter((d) => existsSync(path.join(corpus, d, "config/deploy.yml")));

/** Every ENV name a set's files read, given a placeholder value (a Kamal user has them set). */
function envFor(dir: string): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };
  for (const f of readdirSync(path.join(dir, "config")).filter((f) => f.endsWith(".yml"))) {
    const text = readFileSync(path.join(dir, "config", f), "utf8");
    for (const name of envNamesRead(text)) env[name] = `env-${name.toLowerCase()}`;
  }
  return env;
}

/** What a user compares with `kamal config`: roles, hosts, proxy, health, accessories. */
function summary(c: KamalConfig) {
  return {
    kamal: c.kamal,
    service: c.service,
    image: c.image,
    primaryRole: c.primaryRole,
    roles: c.roles.map((r) => ({
      name: r.name,
      hosts: r.hosts.map((h) => (h.tags.length ? `${h.address} [${h.tags.join(", ")}]` : h.address)),
      proxy: r.traefik,
      ...(r.traefik ? { appPort: r.appPort, routeHosts: r.routeHosts } : {}),
      ...(r.route ? { route: JSON.parse(JSON.stringify(r.route)) } : {}),
      ...(r.healthcheck ? { healthcheck: r.healthcheck } : {}),
      ...(r.cmd ? { cmd: r.cmd } : {}),
    })),
    proxyHosts: c.traefik ? [...new Set(c.roles.filter((r) => r.traefik).flatMap((r) => r.hosts.map((h) => h.address)))] : [],
    ...(c.traefik?.tls ? { proxyTls: c.traefik.tls } : {}),
    ...(c.traefik?.forwardedHeaders ? { proxyTrustsForwardedHeaders: true } : {}),
    ...(c.maintenancePage ? { maintenancePage: c.maintenancePage.length } : {}),
    accessories: c.accessories.map((a) => ({ name: a.name, container: a.containerName, image: a.image, hosts: a.hosts, files: a.files.map((f) => f.target) })),
    ...(c.builder ? { builder: JSON.parse(JSON.stringify(c.builder)) } : {}),
    secretNames: c.secretNames,
    stopWaitTime: c.stopWaitTime,
    warnings: c.warnings,
  };
}

function outcome(dir: string, destination?: string) {
  try {
    return summary(loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), destination, env: envFor(dir), erb: "ruby" }));
  } catch (e) {
    return { error: (e as Error).message.replaceAll(dir, "<app>") };
  }
}

describe("real Kamal configs (test/fixtures/kamal-corpus)", () => {
  it("holds at least 30 sets, each with its source", () => {
    expect(sets.length).toBeGreaterThanOrEqual(30);
    for (const s of sets) {
      const source = JSON.parse(readFileSync(path.join(corpus, s, "SOURCE.json"), "utf8"));
      expect(source.repository, s).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(source.commit, s).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  for (const s of sets) {
    const dir = path.join(corpus, s);
    const source = JSON.parse(readFileSync(path.join(dir, "SOURCE.json"), "utf8")) as { destinations?: string[] };
    const destinations = (source.destinations ?? []).filter((d) => existsSync(path.join(dir, `config/deploy.${d}.yml`)));
    it(`${s}: deploy.yml${destinations.map((d) => ` and -d ${d}`).join("")}`, () => {
      expect(outcome(dir)).toMatchSnapshot("deploy.yml");
      for (const d of destinations) expect(outcome(dir, d)).toMatchSnapshot(`-d ${d}`);
    });
  }
});

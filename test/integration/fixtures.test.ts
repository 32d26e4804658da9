/**
 * Old state stays readable: the state an earlier release wrote (test/fixtures/state/*)
 * is imported, refreshed, updated by today's program and destroyed with today's code.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SshPool } from "../../provider/ssh/pool";
import { PulumiProject, scratchProject, type PulumiRun } from "../../testbed/pulumi";
import { repoRoot, sandbox, onHost, target } from "../../testbed/sandbox";

const pool = new SshPool();
const out = (r: PulumiRun) => r.stdout + r.stderr;
const fixtures = path.join(repoRoot, "test/fixtures/state");

afterAll(() => pool.closeAll());

describe.each(readdirSync(fixtures))("state written by release %s", (release) => {
  let project: PulumiProject;

  it("imports, and refreshes with today's code", async () => {
    for (const h of ["app1", "db1"]) {
      const conn = await pool.connect(target(h));
      await conn.exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal /root/kpfix-db"));
    }
    const dir = scratchProject(`fixture-${release}`, {
      "Pulumi.yaml": "name: kp-fixture\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-fixture", main: "index.ts" }),
      "index.ts": readFileSync(path.join(fixtures, release, "index.ts"), "utf8"),
    });
    project = new PulumiProject(dir, "fixture", { passphrase: "fixture" });
    await project.ensureStack();
    // The old provider text named the package's build by path: after an in-place upgrade
    // that path holds today's code.
    const state = readFileSync(path.join(fixtures, release, "state.json"), "utf8")
      .replaceAll("<IMPLEMENTATION>", path.join(repoRoot, "dist/provider/runtime.js"))
      .replaceAll("<REGISTRY_PASSWORD>", sandbox().registry.password);
    // Secrets are in plaintext in the fixture; the stack takes over the fixture's secrets
    // manager (passphrase "fixture" and its salt), which encrypts them again.
    const salt = JSON.parse(state).deployment.secrets_providers.state.salt as string;
    writeFileSync(path.join(dir, "Pulumi.fixture.yaml"), `encryptionsalt: ${salt}\n`);
    const file = path.join(dir, "state.json");
    writeFileSync(file, state);
    const imported = await project.run(["stack", "import", "--file", file, "--stack", "fixture"]);
    expect(imported.code, out(imported)).toBe(0);
    for (const [k, v] of [["registryPassword", sandbox().registry.password], ["dbPassword", "fixture-db-secret-42"]]) {
      expect((await project.run(["config", "set", "--secret", "--stack", "fixture", k, v])).code).toBe(0);
    }
    const refresh = await project.refresh();
    expect(refresh.code, out(refresh)).toBe(0);
    const exported = JSON.parse((await project.run(["stack", "export", "--stack", "fixture"])).stdout);
    const web = exported.deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::kpfix-web-app1"));
    expect(web.outputs).toMatchObject({ status: "missing", containerId: "" });
  });

  it("updates with today's program: the state gets the portable provider text", async () => {
    const up = await project.up();
    expect(up.code, out(up)).toBe(0);
    const state = (await project.run(["stack", "export", "--stack", "fixture"])).stdout;
    expect(state).not.toContain(repoRoot);
    const conn = await pool.connect(target("app1"));
    expect((await conn.exec(onHost("docker ps --format '{{.Names}}' | sort"))).stdout.trim().split("\n")).toEqual(["kpfix-web-v1", "kpfix-workers-v1", "traefik"]);
    const again = await project.preview(["--expect-no-changes"]);
    expect(again.code, out(again)).toBe(0);
  });

  it("destroys", async () => {
    const destroy = await project.destroy();
    expect(destroy.code, out(destroy)).toBe(0);
    for (const h of ["app1", "db1"]) {
      const conn = await pool.connect(target(h));
      expect((await conn.exec(onHost("docker ps -a --format '{{.Names}}'"))).stdout.trim()).toBe("");
    }
  });
});

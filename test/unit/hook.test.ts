/** A hook runs on this machine (handlers/hook.ts): the file itself, with Kamal's env and the
 * app's secrets, its output redacted; failures say what failed. */
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as hook from "../../provider/handlers/hook";

const SECRET = "hook-secret-4f1d9a";
let dir: string;
let printed: string[];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kp-hook-"));
  printed = [];
  vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void printed.push(a.join(" ")));
});
afterEach(() => vi.restoreAllMocks());

function script(name: string, body: string, mode = 0o755): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}
const inputs = (file: string, over: Record<string, unknown> = {}) => ({
  name: "pre-deploy", path: file, contentHash: "h", cwd: dir, trigger: "t1",
  env: { KAMAL_VERSION: "v2", KAMAL_LOCK: "true" }, secretEnv: { API_TOKEN: SECRET }, ...over,
});

describe("a hook", () => {
  it("runs in the app's root with Kamal's env and the secrets, its output redacted", async () => {
    const file = script("pre-deploy", 'echo "token $API_TOKEN"; env | grep ^KAMAL_ | sort > "$PWD/env.txt"');
    const { outs } = await hook.create(inputs(file));
    expect(outs.ranAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const env = readFileSync(path.join(dir, "env.txt"), "utf8");
    expect(env).toMatch(/^KAMAL_LOCK=true\nKAMAL_PERFORMER=\S+\nKAMAL_RECORDED_AT=\S+Z\nKAMAL_VERSION=v2\n$/);
    expect(printed).toContain("[kamal] local: pre-deploy: token [REDACTED]");
    expect(printed.join("\n")).not.toContain(SECRET);
  });

  it("is recorded, not run, with Kamal's --skip-hooks", async () => {
    const file = script("pre-deploy", 'touch "$PWD/ran"; exit 1');
    const { outs } = await hook.create(inputs(file, { skip: true }));
    expect(outs.ranAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(existsSync(path.join(dir, "ran"))).toBe(false);
    expect(printed).toEqual(["[kamal] local: pre-deploy hook not run (--skip-hooks)"]);
    // The same deploy without -H later: nothing to run (its trigger is unchanged).
    expect(hook.diff("hook/pre-deploy", { ...inputs(file, { skip: true }), ranAt: outs.ranAt }, inputs(file)).changes).toBe(true);
    const { outs: again } = await hook.update("hook/pre-deploy", { ...inputs(file, { skip: true }), ranAt: outs.ranAt }, inputs(file));
    expect(again.ranAt).toBe(outs.ranAt);
    expect(existsSync(path.join(dir, "ran"))).toBe(false);
  });

  it("gives post-deploy KAMAL_RUNTIME", async () => {
    const file = script("post-deploy", 'echo "runtime=$KAMAL_RUNTIME"');
    await hook.create(inputs(file, { name: "post-deploy" }));
    expect(printed.some((l) => /^\[kamal\] local: post-deploy: runtime=\d+$/.test(l))).toBe(true);
  });

  it("fails with its last output lines (redacted) when it exits non-zero, and says when it cannot run", async () => {
    const failing = script("pre-deploy", 'echo "checking"; echo "no: $API_TOKEN" >&2; exit 4');
    await expect(hook.create(inputs(failing))).rejects.toThrow(
      `local: running the pre-deploy hook: it failed with exit code 4; nothing was deployed after it\n--- last output of pre-deploy ---\nchecking\nno: [REDACTED]`,
    );
    const plain = script("pre-connect", "true", 0o644);
    await expect(hook.create(inputs(plain, { name: "pre-connect" }))).rejects.toThrow(
      `local: running the pre-connect hook: ${plain} could not be run: it is not executable (chmod +x it); nothing was deployed after it`,
    );
  });

  it("is stopped at its timeout", async () => {
    const slow = script("pre-deploy", "echo started; sleep 30");
    await expect(hook.create(inputs(slow, { timeout: 1 }))).rejects.toThrow("it did not finish within 1s and was stopped; nothing was deployed after it\n--- last output of pre-deploy ---\nstarted");
  });

  it("does not run again when nothing it is for changed", async () => {
    const file = script("pre-deploy", "echo ran");
    const olds = { ...inputs(file), ranAt: "2026-01-01T00:00:00Z" };
    expect((await hook.update("id", olds, inputs(file, { timeout: 30 }))).outs.ranAt).toBe("2026-01-01T00:00:00Z");
    expect(printed).toEqual([]);
    expect((await hook.update("id", olds, inputs(file, { trigger: "t2" }))).outs.ranAt).not.toBe("2026-01-01T00:00:00Z");
  });
});

/**
 * An accessory KamalApp holds (`hold`, Kamal's deploy leaving accessories alone): check keeps
 * the recorded value of every field whose change would touch the container, says what is
 * pending, and never stores `hold` itself; a new accessory, or one not held, takes the
 * program's values.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { check, diff } from "../../provider/handlers/accessory";
import { providers } from "../../provider/runtime";

const connection = { host: "10.0.0.9", user: "root", privateKey: "KEY", knownHostsPath: "/kh" };
const recorded = { hostName: "db-1", connection, service: "hey", name: "db", image: "postgres:16", env: { A: "1" }, stopWaitTime: 30 };

describe("an accessory held by a deploy", () => {
  afterEach(() => vi.restoreAllMocks());

  it("keeps what would reboot it, takes what only records, says what is pending", async () => {
    const said = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const news = { ...recorded, image: "postgres:17", env: { A: "2" }, stopWaitTime: 10, hold: true };
    // The engine's check (the handler's own, then what the preview says).
    const { inputs, failures } = await providers.accessory.check(recorded, news);
    expect(failures).toEqual([]);
    expect(inputs).toEqual({ ...recorded, stopWaitTime: 10 });
    expect(diff("db-1/hey-db", recorded, inputs).changes).toBe(true);
    expect(said).toHaveBeenCalledWith("[kamal] db-1: accessory db has changes not applied (image, env): a deploy leaves accessories as they run, as Kamal's does; `pulumi-kamal accessory reboot db` applies them");
  });

  it("applies everything when not held, and boots a new one whatever hold says", () => {
    const news = { ...recorded, image: "postgres:17" };
    expect(check(recorded, { ...news, hold: false }).inputs).toEqual(news);
    expect(check({}, { ...news, hold: true }).inputs).toEqual(news);
    const unchanged = check(recorded, { ...recorded, hold: true }).inputs;
    expect(unchanged).toEqual(recorded);
    expect(diff("db-1/hey-db", recorded, unchanged).changes).toBe(false);
  });
});

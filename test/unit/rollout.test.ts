/** The rollout's turn-taking (handlers/rollout.ts), in one process as the provider runs it. */
import { describe, expect, it } from "vitest";
import { RolloutFailed, RolloutMember } from "../../provider/handlers/rollout";

const members = (group: string) => ({
  group,
  members: [
    { role: "web", host: "a", phase: 0 },
    { role: "web", host: "b", phase: 1 },
    { role: "web", host: "c", phase: 2 },
    { role: "workers", host: "a", phase: 3 },
  ],
});
const place = (key: string) => ({ role: key.split("/")[0], host: key.split("/")[1] });
const settle = <T>(p: Promise<T>) => p.then(() => "resolved", (e: Error) => e);

describe("a rollout", () => {
  it("gives each phase its turn once every earlier host passed, and settles when all did", async () => {
    const input = members("one");
    const [a, b, c, w] = ["web/a", "web/b", "web/c", "workers/a"].map((k) => new RolloutMember(input, place(k)));
    for (const m of [a, b, c, w]) m.expect(true);
    a.join();
    const bTurn = b.turn();
    const aSettled = a.settled();
    let bHad = false;
    void bTurn.then(() => (bHad = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(bHad).toBe(false);
    a.passed();
    expect(await settle(bTurn)).toBe("resolved");
    b.join();
    b.passed();
    // A host without changes takes no part: its turn is over at once.
    c.skip();
    expect(await settle(w.turn())).toBe("resolved");
    w.join();
    w.passed();
    expect(await settle(aSettled)).toBe("resolved");
  });

  it("fails every waiting host as soon as one fails, naming it and its step", async () => {
    const input = members("two");
    const [a, b, c] = ["web/a", "web/b", "web/c"].map((k) => new RolloutMember(input, place(k)));
    a.join();
    a.passed();
    const waiting = [a.settled(), c.turn()].map(settle);
    b.join();
    b.fail("waiting for hey-web-v2 to answer its health check: container hey-web-v2 did not become healthy within 8s\n--- logs ---");
    for (const r of await Promise.all(waiting)) {
      expect(r).toBeInstanceOf(RolloutFailed);
      expect((r as Error).message).toBe("b failed (waiting for hey-web-v2 to answer its health check: container hey-web-v2 did not become healthy within 8s)");
    }
  });
});

/**
 * The runtime around each kind's handlers (provider/runtime.ts): the engine's check is the
 * handler's pure check, then its preflight look (bounded: a late or failing look adds
 * nothing), then the preview's notices; the engine's plan (a new resource, a diff's changes)
 * reaches the handler's coordinator.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CheckResult, Handlers, Inputs } from "../../provider/handlers/handlers";
import { asProvider } from "../../provider/runtime";

function handlers(preflight?: Handlers["preflight"]) {
  const plans: [Inputs, boolean][] = [];
  const h: Handlers = {
    check: (_olds, news) => ({ inputs: news, failures: news.bad ? [{ property: "", reason: "bad: is wrong" }] : [], notices: [{ host: "h1", text: "checked" }] }),
    preflight,
    diff: (_id, olds, news) => ({ changes: olds.v !== news.v, replaces: [] }),
    planned: (news, changing) => void plans.push([news, changing]),
    create: async () => ({ id: "x", outs: {} }),
    update: async () => ({ outs: {} }),
    read: async (id, props) => ({ id, props }),
    remove: async () => undefined,
  };
  return { h, plans };
}

describe("the provider runtime", () => {
  afterEach(() => vi.restoreAllMocks());

  it("runs the preflight after a passing check, keeps what it adds, says the notices", async () => {
    const said = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const { h, plans } = handlers(async (_olds, c: CheckResult) => ({
      inputs: { ...c.inputs, planned: "yes" },
      failures: [{ property: "", reason: "h1: taken" }],
      notices: [...(c.notices ?? []), { host: "h1", text: "looked" }],
    }));
    const p = asProvider("test", h);
    expect(await p.check({}, { v: 1 })).toEqual({ inputs: { v: 1, planned: "yes" }, failures: [{ property: "", reason: "h1: taken" }] });
    expect(said.mock.calls).toEqual([["[kamal] h1: checked"], ["[kamal] h1: looked"]]);
    // A failing check: no look, and the resource is not planned.
    const looked = vi.fn(async (_o: Inputs, c: CheckResult) => c);
    const other = handlers(looked);
    expect((await asProvider("test", other.h).check({}, { bad: true })).failures).toEqual([{ property: "", reason: "bad: is wrong" }]);
    expect(looked).not.toHaveBeenCalled();
    expect(plans).toEqual([]);
    expect(other.plans).toEqual([]);
  });

  it("gives up a late or failing look, and tells the coordinator what the engine plans", async () => {
    vi.spyOn(console, "log").mockImplementation(() => undefined);
    const { h, plans } = handlers(() => new Promise(() => undefined));
    const p = asProvider("test", h, 50);
    const began = Date.now();
    expect(await p.check({}, { v: 1 })).toEqual({ inputs: { v: 1 }, failures: [] });
    expect(Date.now() - began).toBeLessThan(2000);
    const failing = asProvider("test", handlers(async () => Promise.reject(new Error("no route to host"))).h);
    expect(await failing.check({ v: 1 }, { v: 2 })).toEqual({ inputs: { v: 2 }, failures: [] });
    // New: planned as changing at check; existing: as its diff says.
    expect(p.diff("x", { v: 1 }, { v: 1 })).toEqual({ changes: false, replaces: [] });
    expect(p.diff("x", { v: 1 }, { v: 2 })).toEqual({ changes: true, replaces: [] });
    expect(await p.check({ v: 1 }, { v: 2 })).toEqual({ inputs: { v: 2 }, failures: [] });
    expect(plans).toEqual([[{ v: 1 }, true], [{ v: 1 }, false], [{ v: 2 }, true]]);
  });
});

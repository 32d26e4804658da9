/** The fault scenarios under load (testbed/faults.ts), alone with `--faults`. */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { FAULTS, FaultRig, failedOn, totalOn, WEB as FAULT_HOSTS, type Fault } from "../testbed/faults";
import { repoRoot } from "../testbed/sandbox";
import { log, pool } from "./context";


export interface FaultFigures {
  name: string;
  title: string;
  /** "completed", or the first error line of the faulted `up`. */
  outcome: string;
  hosts: { host: string; failed: number; total: number; counted: boolean }[];
  converge: { ok: boolean; failed: number; total: number };
  seconds: number;
}

/** The first error the user saw, without Pulumi's own summary lines. */
export function firstError(out: string): string {
  const line = out.split("\n").map((l) => l.trim()).find((l) => /^error: /.test(l) && !/update failed|preview failed/.test(l));
  return (line ?? "failed").replace(/^error: /, "").slice(0, 220);
}

/** Every fault scenario of faults.test.ts, under the same load, one after the other. */
export async function faultPhases(): Promise<FaultFigures[]> {
  const rig = new FaultRig("bench-faults");
  const figures: FaultFigures[] = [];
  await rig.setup();
  try {
    const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");
    for (const [name, f] of (Object.entries(FAULTS) as [string, Fault][]).filter(([n]) => !only || only.includes(n))) {
      log(`fault: ${f.title}`);
      const o = await rig.play(f);
      const hosts = FAULT_HOSTS.map((h) => ({ host: h, failed: failedOn(o.load, h, f.routeGone?.includes(h)), total: totalOn(o.load, h), counted: !f.cutOff?.includes(h) }));
      const converge = {
        ok: o.converge.up.code === 0,
        failed: FAULT_HOSTS.reduce((n, h) => n + failedOn(o.converge.load, h, f.routeGone?.includes(h)), 0),
        total: FAULT_HOSTS.reduce((n, h) => n + totalOn(o.converge.load, h), 0),
      };
      figures.push({ name, title: f.title, outcome: o.up.code === 0 ? "completed" : firstError(o.out), hosts, converge, seconds: o.seconds });
      log(`  ${hosts.map((x) => `${x.host} ${x.failed}/${x.total}${x.counted ? "" : " (cut off)"}`).join(", ")}; converge ${converge.ok ? "ok" : "FAILED"} ${converge.failed}/${converge.total}`);
    }
  } finally {
    await rig.teardown();
  }
  return figures;
}

export function faultsReport(figures: FaultFigures[]): string {
  const mark = (ok: boolean) => (ok ? "met" : "**MISSED**");
  const rows = ["| fault (under load on both web hosts) | the faulted `pulumi up` | failed requests, hosts that stayed reachable | the next `up` | goal | |", "|---|---|---|---|---|---|"];
  for (const f of figures) {
    const counted = f.hosts.filter((h) => h.counted);
    const failed = counted.reduce((n, h) => n + h.failed, 0);
    const cut = f.hosts.filter((h) => !h.counted).map((h) => `; ${h.host} cut off: ${h.failed} of ${h.total} failed`).join("");
    const reachable = `${failed} of ${counted.reduce((n, h) => n + h.total, 0)}${cut}`;
    const next = `${f.converge.ok ? "converged" : "**failed**"}, ${f.converge.failed} of ${f.converge.total} failed`;
    const ok = f.converge.ok && f.converge.failed === 0 && failed === 0;
    const goal = "0 failed; converges, 0 failed";
    rows.push(`| ${f.title} | ${f.outcome.replace(/\|/g, "\\|")} | ${reachable} | ${next} | ${goal} | ${mark(ok)} |`);
  }
  return rows.join("\n");
}

export async function faultsOnly() {
  const started = Date.now();
  const figures = await faultPhases();
  const table = faultsReport(figures);
  const dir = path.join(repoRoot, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `faults-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ faults: figures, durationSeconds: Math.round((Date.now() - started) / 1000), table }, null, 2) + "\n");
  console.log(table);
  console.log(`\nResults: ${path.relative(repoRoot, file)}`);
  pool.closeAll();
}

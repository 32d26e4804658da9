/**
 * Fake vendor CLIs for the vault adapters' tests: an executable on a temporary PATH that
 * answers each expected argv (and, when given, expected env) with recorded stdout and exit
 * status (the same argv listed several times is answered by each in turn), and fails loudly (exit 97, the argv in its stderr and in a log) on any other call.
 * The recorded outputs are the vendors' documented formats; each test says where its come from.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface FakeCall {
  argv: string[];
  stdout?: string;
  /** Exit status (default 0). */
  status?: number;
  /** Variables the call must see, e.g. { BW_SESSION: "token" }. */
  env?: Record<string, string>;
}

export interface FakeClis {
  /** The directory to put first on PATH. */
  bin: string;
  /** Every call made, in order, as "name arg1 arg2…" (with required env as "VAR=value " in front). */
  calls(): string[];
  /** An env for vendorCli with the fakes first on PATH. */
  env(extra?: Record<string, string>): Record<string, string | undefined>;
}

/** Writes fake CLIs: `programs` maps a program name to its expected calls (argv without the name). */
export function fakeClis(programs: Record<string, FakeCall[]>): FakeClis {
  const bin = mkdtempSync(path.join(os.tmpdir(), "fake-cli-"));
  const log = path.join(bin, "calls.log");
  for (const [name, calls] of Object.entries(programs)) {
    const spec = path.join(bin, `${name}.json`);
    writeFileSync(spec, JSON.stringify(calls));
    const script = `#!/usr/bin/env node
const fs = require("fs");
const calls = JSON.parse(fs.readFileSync(${JSON.stringify(spec)}, "utf8"));
const argv = process.argv.slice(2);
const usedFile = ${JSON.stringify(spec)} + ".used";
const used = fs.existsSync(usedFile) ? JSON.parse(fs.readFileSync(usedFile, "utf8")) : [];
const matching = calls.map((c, i) => [c, i]).filter(([c]) => JSON.stringify(c.argv) === JSON.stringify(argv) && Object.entries(c.env || {}).every(([k, v]) => process.env[k] === v));
// The same command line answered in turn (a status before and after a sign-in), the last again.
const pick = matching.find(([, i]) => !used.includes(i)) || matching[matching.length - 1];
const call = pick && pick[0];
if (pick) fs.writeFileSync(usedFile, JSON.stringify([...used, pick[1]]));
const envText = call ? Object.entries(call.env || {}).map(([k, v]) => k + "=" + v + " ").join("") : "";
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify(envText + [${JSON.stringify(name)}, ...argv].join(" ")) + "\\n");
if (!call) { process.stderr.write("unexpected call: ${name} " + argv.join(" ") + "\\n"); process.exit(97); }
if (call.stdout) process.stdout.write(call.stdout);
process.exit(call.status || 0);
`;
    const file = path.join(bin, name);
    writeFileSync(file, script);
    chmodSync(file, 0o755);
  }
  return {
    bin,
    calls: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as string) : []),
    env: (extra = {}) => ({ ...process.env, PATH: `${bin}:${process.env.PATH}`, ...extra }),
  };
}

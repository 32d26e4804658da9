/**
 * The demo's story, on examples/basic and the sandbox: deploy v1, look at it, preview a
 * change to v2, deploy v2 under constant load and count failed requests.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { startLoad } from "../testbed/load";
import { demoHints } from "./demoHints";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { configure, sandboxState } = require("./sandbox-config.js");

// The repository root's Pulumi.yaml runs examples/basic (its config and state stay there).
const dir = path.resolve(__dirname, "..");
const stack = "sandbox";
const bold = (s: string) => `\x1b[1m${s}\x1b[0m`;

function pulumi(args: string[], show: (line: string) => boolean | string = () => true): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", [...args, "--stack", stack, "--non-interactive"], { cwd: dir });
    let out = "";
    let partial = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) {
        const shown = show(l);
        if (shown) console.log(`    ${typeof shown === "string" ? shown : l}`);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

async function version(url: string): Promise<string> {
  const r = await fetch(url + "version");
  return ((await r.json()) as { version: string }).version;
}

async function main() {
  const host = sandboxState().hosts[0].address as string;
  const url = `http://${host}/`;

  console.log(bold(`==> Configuring the demo (examples/basic, run by the root Pulumi.yaml; stack "${stack}") for sandbox host ${host}`));
  configure(dir, stack, "v1");
  // Progress lines from the provider ([kamal] …) and the engine's resource lines.
  // The engine's step lines, the provider's progress ([kamal] …) as it happens, the summary.
  const interesting = (l: string): boolean | string => {
    const progress = l.match(/pulumi:Stack \S+ \S+[^[]*(\[kamal\] .*)$/);
    if (progress) return `  ${progress[1]}`;
    return /^ [+~-] /.test(l) || /^(Resources:|\s+[+~-] \d+ |\s+\d+ unchanged|Duration:)/.test(l);
  };

  // The sandbox may have been reset since the last demo (tests clean the hosts): read what
  // really runs there first, so that `up` repairs whatever is missing.
  console.log(bold("==> pulumi refresh (reads the real containers into the state)"));
  await pulumi(["refresh", "--yes", "--skip-preview"], (l) => /^ ~ .* updated|Resources:|\s+~ \d+ updated/.test(l));

  console.log(bold("==> pulumi up (v1)"));
  const first = await pulumi(["up", "--yes", "--skip-preview"], interesting);
  if (first.code !== 0) throw new Error("pulumi up failed:\n" + first.out);
  console.log(bold(`==> Serving ${url}: version ${await version(url)}`));

  console.log(bold("==> pulumi preview --diff after `pulumi config set version v2`"));
  configure(dir, stack, "v2");
  let inDiff = false;
  const preview = await pulumi(["preview", "--diff"], (l) => {
    if (/^\s+~ pulumi-nodejs:dynamic\/kamal:AppContainer/.test(l)) inDiff = true;
    if (/^Resources:/.test(l)) inDiff = false;
    return inDiff || /to update|unchanged/.test(l);
  });
  if (preview.code !== 0) throw new Error("pulumi preview failed:\n" + preview.out);

  console.log(bold("==> pulumi up (v2) under constant load: 200 req/s keep-alive + 50 req/s new connections"));
  const loads = [startLoad({ url: url + "version", rate: 200 }), startLoad({ url: url + "version", rate: 50, newConnections: true })];
  const second = await pulumi(["up", "--yes", "--skip-preview"], interesting);
  await new Promise((r) => setTimeout(r, 1000));
  const results = await Promise.all(loads.map((l) => l.stop()));
  if (second.code !== 0) throw new Error("pulumi up failed:\n" + second.out);
  const total = results.reduce((n, r) => n + r.total, 0);
  const failed = results.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
  console.log(bold(`==> Serving ${url}: version ${await version(url)}`));
  console.log(bold(`==> ${total} requests during the swap, ${failed} failed (non-2xx, socket errors or timeouts)`));
  console.log(`\nTry, in any shell (the sandbox stack's passphrase first):`);
  for (const line of demoHints(dir, stack, process.env.PULUMI_CONFIG_PASSPHRASE ?? "")) console.log(`  ${line}`);
  if (failed > 0) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});

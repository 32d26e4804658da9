/**
 * What every command of the CLI shares: the command's shape, output, the stack it runs on,
 * how host failures become an exit code, and the lazily loaded modules (each command loads
 * only what it uses: a deploy starts without the SSH client, deploy.yml's loader or the
 * Automation API).
 */
import type { ParseArgsConfig } from "node:util";
import type { HostError } from "../remote";
import type { Deployed } from "../stack";
import { UsageError } from "../usage";

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run: (values: Record<string, string | boolean | string[] | undefined>, positionals: string[]) => Promise<number>;
  /** Takes its arguments as they are (Kamal's own option syntax), after the stack options. */
  raw?: boolean;
}

export const engine = () => import("../engine");
export const select = () => import("../select");
export const hostCommands = () => import("../hostCommands");

export const out = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
const print = out;
export const usage = (message: string): never => {
  throw new UsageError(message);
};
export const str = (v: unknown) => (typeof v === "string" ? v : undefined);

export async function load(values: Record<string, unknown>): Promise<Deployed> {
  return (await import("../stack")).loadDeployed({ cwd: str(values.cwd), stack: str(values.stack) });
}


/** Failures on some hosts: each said on its own line; exit 1. */
export function reportErrors(errors: HostError[]): number {
  for (const e of errors) process.stderr.write(`error: ${e.message}\n`);
  return errors.length ? 1 : 0;
}

export function intOption(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, e.g. --${name} 100`);
  return n;
}

/** Ctrl-C ends a follow or a command cleanly (the remote side gets SIGINT, then the channel closes). */
export function interrupt(): AbortSignal {
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  process.once("SIGTERM", () => ac.abort());
  return ac.signal;
}

/** Where an update runs: the project and stack, without reading the state. */
export const engineOf = async (v: Record<string, unknown>) => {
  const { dir, stack } = await (await import("../stack")).stackOf({ cwd: str(v.cwd), stack: str(v.stack) });
  // With --json the progress goes to stderr: stdout is the result alone; -q drops it.
  const write = v.quiet ? () => {} : (l: string) => (v.json ? process.stderr.write(`${l}\n`) : out(l));
  return { dir, stack, write, verbose: !!v.verbose };
};
export const versionOptions = { version: { type: "string" }, "version-key": { type: "string" }, "skip-push": { type: "boolean", short: "P" }, json: { type: "boolean" } } as const;
export const VERSION_HELP = `      --json             the result for scripts on stdout (progress on stderr)
      --version V        the version (image tag) to run (default: the git commit, as Kamal's)
      --version-key K    the stack config key the program reads it from (default: version)
  -P, --skip-push        no build: deploy the image the registry has for the version (Kamal's --skip-push)`;
export const deployOptions = (v: Record<string, unknown>) => ({ version: str(v.version), versionKey: str(v["version-key"]), skipPush: !!v["skip-push"] });

/** Bootstraps the stack's hosts (or one), reporting per host; exit 1 if one failed. */
export async function runBootstrap(v: Record<string, unknown>, o: { host?: string; json?: boolean; write?: (text: string) => void }): Promise<number> {
  const out = o.write ?? print;
  const { bootstrap, bootstrapHosts, formatBootstrap } = await import("../bootstrap");
  const { stack, from, hosts } = await bootstrapHosts({ cwd: str(v.cwd), stack: str(v.stack) });
  const chosen = hosts.filter((h) => !o.host || h.name === o.host || h.cfg.connection.host === o.host);
  if (!chosen.length) throw new UsageError(`stack ${stack} has no host ${o.host} (hosts: ${hosts.map((h) => h.name).join(", ")})`);
  if (!o.json) out(`Bootstrapping ${chosen.map((h) => h.name).join(", ")} (stack ${stack}, hosts from ${from})`);
  const { reports, errors } = await bootstrap(chosen, o.json ? () => {} : out);
  if (reports.length) out(o.json ? JSON.stringify({ stack, hosts: reports }, null, 2) : formatBootstrap(reports));
  if (errors.length) return reportErrors(errors);
  // Kamal's docker-setup hook, once every host is ready.
  const { dir } = await (await import("../stack")).stackOf({ cwd: str(v.cwd), stack: str(v.stack) });
  const [{ projectOf, stackConfig }, { STACK_CONFIG }] = await Promise.all([import("../pulumi"), import("../programConfig")]);
  const project = projectOf(dir);
  const destination = project ? stackConfig(dir, project, stack)[STACK_CONFIG.destination] : undefined;
  await (await import("../projectHook")).runProjectHook({ dir, destination, hook: "docker-setup", hosts: chosen.map((h) => h.name), command: "server", subcommand: "bootstrap", write: o.json ? (t) => process.stderr.write(`${t}\n`) : out });
  return 0;
}

/** The services a maintenance switch applies to: --service, else every one in the stack. */
export async function servicesOf(d: Deployed, v: Record<string, unknown>): Promise<string[]> {
  const { selectApps } = await select();
  return [...new Set(selectApps(d, { service: str(v.service) }).map((a) => a.cfg.service))];
}

export const logsOptions = { host: { type: "string" }, follow: { type: "boolean", short: "f" }, since: { type: "string" }, lines: { type: "string", short: "n" }, grep: { type: "string" } } as const;


/** An update's result for scripts (`--json`): one JSON object on stdout. */
export async function updateResult(
  v: Record<string, unknown>,
  command: string,
  update: (o: Awaited<ReturnType<typeof engineOf>>) => Promise<import("../engine").DeployResult>,
): Promise<number> {
  const o = await engineOf(v);
  const result = await update(o);
  if (v.json) out(JSON.stringify({ command, stack: o.stack, result: "succeeded", ...result }));
  return 0;
}

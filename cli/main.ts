#!/usr/bin/env node
/**
 * `pulumi-kamal`: Kamal's commands over the Pulumi engine and a stack's state, as Kamal
 * users know them (`kamal init`, `server bootstrap`, `deploy`, `rollback`, `details`, `app
 * logs`, `app exec`, `audit`, `lock`). Hosts, roles, containers and SSH settings come from
 * the stack's state (and, for a Kamal project's hosts not deployed yet, from deploy.yml); the
 * provider's own SSH executor, host-key policy and redaction do the rest.
 *
 * Exit codes: 0 done; 1 a host failed (the message names it and the step); 2 a usage or
 * setup problem; 3 the deploy lock is held; `exec` exits with the command's own code.
 */
import { parseArgs } from "node:util";
import { opened } from "./lifecycle";
import { kamalGlobalOptions } from "./aliases";
import { SKIP_HOOKS_ENV } from "../components/skipHooks";
import { EngineError, LockRefused, UsageError } from "./usage";
import { type Command, out } from "./commands/common";
import { deployCommands } from "./commands/deploy";
import { inspectCommands } from "./commands/inspect";
import { kamalCommands } from "./commands/kamal";
import { stateCommands } from "./commands/state";

const GLOBAL = `Stack options (every command):
  -s, --stack NAME     the stack (default: the project's selected stack); -d DEST (Kamal's) is the destination's stack
  -C, --cwd DIR        the Pulumi project's directory (default: this one)
      --service NAME   one service, when the stack has several
Kamal's (where Kamal has them):
  -p, --primary        only the primary host (the primary role's first host: "web", else the first role)
  -H, --skip-hooks     this update's hooks are recorded, not run
  -q, --quiet          no progress lines: results and errors only
  -v, --verbose        every line of the Pulumi engine's output, beside the progress
  -h, --help           this help`;

const stackOptions = {
  stack: { type: "string", short: "s" },
  cwd: { type: "string", short: "C" },
  service: { type: "string" },
  help: { type: "boolean", short: "h" },
  primary: { type: "boolean", short: "p" },
  "skip-hooks": { type: "boolean", short: "H" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
} as const;

const COMMANDS: Record<string, Command> = { ...deployCommands, ...inspectCommands, ...kamalCommands, ...stateCommands };

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    "pulumi-kamal: Kamal's commands (init, deploy, rollback, details, logs, exec, lock…) over the Pulumi engine and a stack's state",
    "",
    "Usage: pulumi-kamal COMMAND [options]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    "",
    GLOBAL,
    "",
    "pulumi-kamal COMMAND --help shows a command's options.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    out(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    // deploy.yml's aliases, as Kamal runs them.
    const cwdAt = args.findIndex((a) => a === "-C" || a === "--cwd");
    const alias = await (await import("./aliases")).aliasCommandLine(cwdAt >= 0 ? args[cwdAt + 1] : process.cwd(), name, args).catch((e: Error) => (process.stderr.write(`pulumi-kamal: ${e.message}\n`), null));
    if (alias === null) return 2;
    if (alias && alias[0] !== name) return main(alias);
    process.stderr.write(`pulumi-kamal: no command "${name}" (commands: ${Object.keys(COMMANDS).join(", ")}); pulumi-kamal --help\n`);
    return 2;
  }
  // With --json a failure is a JSON object on stdout too (scripts read one place).
  const json = (args.includes("--") ? args.slice(0, args.indexOf("--")) : args).includes("--json");
  const fail = (code: number, message: string): number => {
    if (json) out(JSON.stringify({ command: name, result: code === 3 ? "locked" : "failed", exitCode: code, error: message }));
    return code;
  };
  try {
    // Everything after "--" is the remote command's, untouched.
    const dash = args.indexOf("--");
    const own = dash >= 0 ? args.slice(0, dash) : args;
    if (command.raw) {
      if (own.includes("--help")) return (out(`${command.usage}\n\n${command.summary}`), 0);
      const cwdAt = own.findIndex((a) => a === "-C" || a === "--cwd");
      const cwd = cwdAt >= 0 ? own[cwdAt + 1] : undefined;
      return await command.run({ cwd }, cwdAt >= 0 ? [...own.slice(0, cwdAt), ...own.slice(cwdAt + 2)] : own);
    }
    const parsed = parseArgs({ args: kamalGlobalOptions(own, { role: "role" in command.options, host: "host" in command.options }), options: { ...stackOptions, ...command.options }, allowPositionals: true, strict: true });
    if (parsed.values.help) {
      out(`${command.usage}\n\n${command.summary}\n\n${GLOBAL}`);
      return 0;
    }
    const positionals = dash >= 0 ? [...parsed.positionals, ...args.slice(dash + 1)] : parsed.positionals;
    const values = await kamalClassOptions(name, command, parsed.values as Record<string, string | boolean | undefined>);
    return await command.run(values, positionals);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UsageError || err.code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`pulumi-kamal ${name}: ${err.message}\n`);
      return fail(2, err.message);
    }
    if (e instanceof EngineError) {
      process.stderr.write(`pulumi-kamal ${name}: failed:\n${err.message}\n`);
      return fail(1, err.message);
    }
    if (e instanceof LockRefused) {
      process.stderr.write(`pulumi-kamal ${name}: ${err.message}\n`);
      return fail(3, err.message);
    }
    process.stderr.write(`pulumi-kamal ${name}: ${err.message}\n`);
    return fail(1, err.message);
  } finally {
    if (opened.ssh) (await import("./remote")).closeAll();
  }
}

/** Kamal's class options that act beside a command's own: `-p` picks the primary host for a
 * command that runs on hosts, `-H` reaches the program (KamalApp's hooks), `-q`/`-v` are
 * read where progress is written (commands/common.ts). */
async function kamalClassOptions(name: string, command: Command, values: Record<string, string | boolean | undefined>) {
  if (values.quiet && values.verbose) throw new UsageError("-q/--quiet and -v/--verbose: give one");
  if (values["skip-hooks"]) process.env[SKIP_HOOKS_ENV] = "1";
  if (!values.primary) return values;
  if (!("host" in command.options)) throw new UsageError(`-p/--primary: ${name} does not run on chosen hosts (its hosts are the stack's)`);
  if (values.host) throw new UsageError("-p/--primary and -h/--hosts: give one");
  const [{ load }, { primaryHost }] = await Promise.all([import("./commands/common"), import("./select")]);
  return { ...values, host: primaryHost(await load(values), typeof values.service === "string" ? values.service : undefined) };
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`pulumi-kamal: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}

/**
 * `pulumi-kamal exec`: a command in a one-off container of the deployed version, with the
 * role's env and secret env file (Kamal's `kamal app exec`), or inside the running container
 * with `--reuse`; `-i` gives it a terminal (a console) on one host. The secret env reaches
 * the container through its env file on the host: nothing secret is on the command line,
 * and this command prints only what the container prints.
 */
import type { Command } from "../provider/commands/command";
import { randomBytes } from "node:crypto";
import { execCommand, execContainerName } from "../provider/commands/operator";
import { audit } from "../provider/handlers/common";
import { LineSplitter } from "./lines";
import { connect, eachHost, type HostError } from "./remote";
import type { AppOnHost } from "./stack";

export interface ExecOptions {
  cmd: string[];
  reuse?: boolean;
  interactive?: boolean;
  /** Variables for the command (Kamal's -e KEY=VALUE). */
  env?: Record<string, string>;
  /** A detached one-off container (Kamal's --detach): started, left running, kept. */
  detach?: boolean;
  /** Kamal's --raw: each host's stdout as it is, never prefixed with the host. */
  raw?: boolean;
  signal?: AbortSignal;
}

function commandFor(a: AppOnHost, o: ExecOptions): Command {
  return execCommand(a.cfg, o.cmd, {
    name: execContainerName(a.cfg, randomBytes(3).toString("hex")),
    envFile: a.cfg.envFile?.path,
    reuse: o.reuse ? a.container : undefined,
    interactive: o.interactive,
    env: o.env,
    detach: o.detach,
  });
}

const described = (o: ExecOptions) => o.cmd.join(" ");

/** Runs on each host (prefixing lines with the host when there are several); resolves with
 * the highest exit code. */
export async function execOn(apps: AppOnHost[], o: ExecOptions, write: (text: string) => void, writeErr: (text: string) => void): Promise<{ code: number; errors: HostError[] }> {
  let code = 0;
  const many = apps.length > 1 && !o.raw;
  const width = Math.max(...apps.map((a) => a.cfg.hostName.length));
  const { errors } = await eachHost(apps, "running the command", async (a) => {
    const conn = await connect(a.cfg.connection);
    const prefix = (line: string) => `${a.cfg.hostName.padEnd(width)} | ${line}\n`;
    const out = many ? new LineSplitter((l) => write(prefix(l))) : undefined;
    const err = many ? new LineSplitter((l) => writeErr(prefix(l))) : undefined;
    const r = await conn.session(commandFor(a, o), {
      onStdout: (c) => (out ? out.push(c) : write(c.toString())),
      onStderr: (c) => (err ? err.push(c) : writeErr(c.toString())),
      signal: o.signal,
    });
    out?.end();
    err?.end();
    await audit(conn, a.cfg.hostName, { service: a.cfg.service, destination: a.cfg.destination, role: a.cfg.role, runDirectory: a.cfg.runDirectory }, `Executed cmd '${described(o)}' on app version ${a.cfg.version}${o.reuse ? ` in ${a.container}` : ""}`);
    code = Math.max(code, r.code);
  });
  return { code, errors };
}

/** A terminal session on one host: this terminal's keys go to the command, raw. */
export async function execInteractive(a: AppOnHost, o: ExecOptions): Promise<number> {
  const conn = await connect(a.cfg.connection);
  const stdin = process.stdin;
  const tty = stdin.isTTY;
  if (tty) stdin.setRawMode(true);
  stdin.resume();
  try {
    const r = await conn.session(commandFor(a, { ...o, interactive: true }), {
      pty: { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80, term: process.env.TERM },
      input: stdin,
      onStdout: (c) => process.stdout.write(c),
    });
    await audit(conn, a.cfg.hostName, { service: a.cfg.service, destination: a.cfg.destination, role: a.cfg.role, runDirectory: a.cfg.runDirectory }, `Executed cmd '${described(o)}' on app version ${a.cfg.version}${o.reuse ? ` in ${a.container}` : ""} (interactive)`);
    return r.code;
  } finally {
    if (tty) stdin.setRawMode(false);
    stdin.pause();
  }
}

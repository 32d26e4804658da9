/**
 * `pulumi-kamal logs`: the containers' output from every host at once, each line prefixed
 * with its host (and role when several show); `--follow` until Ctrl-C. `--grep` filters here,
 * on the operator's side: no pattern reaches a remote shell.
 */
import { logs as logsCommand, type LogsOptions } from "../provider/commands/operator";
import { LineSplitter } from "./lines";

export { LineSplitter };
import { connect, eachHost, HostError } from "./remote";

export interface LogSource {
  cfg: { hostName: string; connection: Parameters<typeof connect>[0] };
  container: string;
  /** The prefix's second part (the role, an accessory's name), when several kinds show. */
  label?: string;
}

export async function streamLogs(
  sources: LogSource[],
  opts: LogsOptions & { grep?: RegExp; signal?: AbortSignal },
  write: (line: string) => void,
): Promise<HostError[]> {
  const width = Math.max(...sources.map((s) => prefixOf(s).length));
  const { errors } = await eachHost(sources, "reading logs", async (s) => {
    const conn = await connect(s.cfg.connection);
    const prefix = prefixOf(s).padEnd(width);
    const split = new LineSplitter((line) => {
      if (!opts.grep || opts.grep.test(line)) write(`${prefix} | ${line}`);
    });
    // Following, the command gets a terminal: when the session ends, it is hung up.
    const r = await conn.session(logsCommand(s.container, opts), { onStdout: (c) => split.push(c), signal: opts.signal, pty: opts.follow ? { rows: 40, cols: 500, term: "dumb" } : undefined });
    split.end();
    if (r.code !== 0 && !opts.signal?.aborted) throw new HostError(s.cfg.hostName, `reading the logs of ${s.container}`, new Error(`docker logs exited ${r.code}`));
  });
  return errors;
}

function prefixOf(s: LogSource): string {
  return s.label ? `${s.cfg.hostName} ${s.label}` : s.cfg.hostName;
}

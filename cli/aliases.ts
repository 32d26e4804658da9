/**
 * Kamal's command lines read as this CLI's. deploy.yml's `aliases`, run as Kamal runs them: `pulumi-kamal NAME ARGS…` is the alias's
 * command line (split as Ruby's Shellwords splits it) followed by ARGS, a Kamal command line
 * read as this CLI's: `app exec` is `exec`, `app logs` is `logs`, Kamal 1's `traefik` is
 * `proxy`, `-r`/`--roles` is `--role`, `-h`/`--hosts` is `--host`.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { UsageError } from "./usage";

/** Kamal's `app` subcommands that are top-level commands here. */
const APP: Record<string, string> = { exec: "exec", logs: "logs", details: "details", maintenance: "maintenance", live: "live", boot: "redeploy" };
const OPTIONS: Record<string, string> = { "-r": "--role", "--roles": "--role", "-h": "--host", "--hosts": "--host" };

/** A Kamal command line as this CLI's. */
export function kamalCommandLine(words: readonly string[]): string[] {
  const options = (rest: readonly string[]) => rest.map((w) => OPTIONS[w] ?? w.replace(/^--roles=/, "--role=").replace(/^--hosts=/, "--host="));
  const [first, second, ...rest] = words;
  if (first === "app" && second !== undefined && APP[second]) return [APP[second], ...options(rest)];
  if (first === "traefik") return ["proxy", ...options(words.slice(1))];
  if (first === "server" && second === "bootstrap") return ["bootstrap", ...options(rest)];
  return [...words.slice(0, 1), ...options(words.slice(1))];
}

/** The command line an alias of the project's deploy.yml runs, or undefined without one. */
export async function aliasCommandLine(dir: string, name: string, args: readonly string[]): Promise<string[] | undefined> {
  const file = path.join(dir, "config/deploy.yml");
  if (!existsSync(file)) return undefined;
  const [{ loadKamalConfig }, { shellsplit }] = await Promise.all([import("../kamal/config"), import("../kamal/vault/shellwords")]);
  let aliases: Record<string, string>;
  try {
    aliases = loadKamalConfig({ file }).aliases;
  } catch (e) {
    throw new UsageError(`no command "${name}", and config/deploy.yml, where an alias of that name would be, does not load: ${(e as Error).message}`);
  }
  const line = aliases[name];
  return line === undefined ? undefined : kamalCommandLine([...shellsplit(line), ...args]);
}

/** Kamal's global options as this CLI's: `-d DEST` is the destination's stack (init names
 * each stack after its destination); `-r`/`--roles` is `--role` and `-h`/`--hosts` is `--host`
 * where a command takes one (comma lists and patterns: select.ts). `-h` with no value after it
 * stays this CLI's help. */
export function kamalGlobalOptions(args: readonly string[], takes: { role: boolean; host: boolean }): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = /^(-d|--destination|-r|--roles|--hosts)(?:=(.*))?$/.exec(a);
    const kind = m?.[1] === "-r" || m?.[1] === "--roles" ? "role" : m?.[1] === "--hosts" ? "host" : "stack";
    if (a === "-h" && takes.host && args[i + 1] !== undefined && !args[i + 1].startsWith("-")) {
      out.push("--host");
      continue;
    }
    if (!m || (kind === "role" && !takes.role) || (kind === "host" && !takes.host)) {
      out.push(a);
      continue;
    }
    const to = `--${kind}`;
    out.push(...(m[2] !== undefined ? [`${to}=${m[2]}`] : [to]));
  }
  return out;
}

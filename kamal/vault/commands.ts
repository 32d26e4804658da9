/**
 * Kamal's `secrets fetch` and `secrets extract`: their arguments (Thor's way of reading
 * options anywhere on the line), what they print, and what they return to a secrets file
 * with `--inline` (fetch: the JSON shell-escaped, so `$SECRETS` passes it on as one word;
 * extract: the value itself).
 */
import { type VendorCli, VaultError } from "./adapter";
import { vaultAdapter } from "./index";
import { shellescape } from "./shellwords";

interface Parsed {
  positional: string[];
  options: Record<string, string | boolean>;
}

/** Options each command takes (name → takes a value), with their short forms. Kamal's
 * global options are accepted and have no effect on these two commands. */
const OPTIONS: Record<string, { value: boolean; short?: string }> = {
  adapter: { value: true, short: "a" },
  account: { value: true },
  from: { value: true },
  inline: { value: false },
  "config-file": { value: true, short: "c" },
  destination: { value: true, short: "d" },
  verbose: { value: false, short: "v" },
  quiet: { value: false, short: "q" },
  "skip-hooks": { value: false, short: "H" },
};

function parse(args: readonly string[]): Parsed {
  const positional: string[] = [];
  const options: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const long = /^--(no-)?([a-z][a-z-]*)(?:=([\s\S]*))?$/.exec(a);
    const short = /^-([a-zA-Z])([\s\S]*)$/.exec(a);
    const name = long ? long[2] : short ? Object.keys(OPTIONS).find((k) => OPTIONS[k].short === short[1]) : undefined;
    if (!long && !short) {
      positional.push(a);
      continue;
    }
    if (!name || !OPTIONS[name]) throw new VaultError(`Unknown option ${a}`);
    if (!OPTIONS[name].value) {
      options[name] = !long?.[1];
      continue;
    }
    const inline = long ? long[3] : short![2] || undefined;
    const value = inline ?? args[++i];
    if (value === undefined) throw new VaultError(`No value provided for option '--${name}'`);
    options[name] = value;
  }
  return { positional, options };
}

/** What the command prints (without `--inline`) or returns (with it). */
export function secretsCommand(args: readonly string[], cli: VendorCli): string {
  const [sub, ...rest] = args;
  const { positional, options } = parse(rest);
  const inline = options.inline === true;
  if (sub === "fetch") {
    if (typeof options.adapter !== "string") throw new VaultError("No value provided for required options '--adapter'");
    const adapter = vaultAdapter(options.adapter, cli);
    // Kamal says so and returns, rather than failing (a secrets file then fails on the value).
    if (adapter.requiresAccount && !options.account) {
      if (inline) throw new VaultError("No value provided for required options '--account'");
      return "No value provided for required options '--account'";
    }
    const results = adapter.fetch(positional, { account: str(options.account), from: str(options.from) });
    const json = JSON.stringify(results);
    return inline ? shellescape(json) : json;
  }
  if (sub === "extract") {
    if (positional.length !== 2) throw new VaultError(`"kamal secrets extract" was called with ${positional.length ? `arguments ${JSON.stringify(positional)}` : "no arguments"}\nUsage: "kamal secrets extract NAME SECRETS"`);
    return extract(positional[0], positional[1]);
  }
  throw new VaultError(`Could not find command "${sub ?? ""}" in "secrets" namespace.`);
}

/** The secret NAME from a fetch's JSON: its own key, else the first key ending in "/NAME". */
export function extract(name: string, json: string): string {
  let secrets: Record<string, unknown>;
  try {
    secrets = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new VaultError(`Could not find secret ${name}: the secrets given are not the JSON a fetch returns`);
  }
  const own = secrets[name];
  const value = own !== undefined && own !== null && own !== false ? own : Object.entries(secrets).find(([k]) => k.endsWith(`/${name}`))?.[1];
  if (value === undefined || value === null) throw new VaultError(`Could not find secret ${name}`);
  return typeof value === "string" ? value : JSON.stringify(value);
}

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/**
 * `pulumi-kamal secrets fetch|extract|print`: Kamal's `kamal secrets` with its arguments and
 * output. fetch and extract are the same code a secrets file's `$(kamal secrets …)` runs;
 * print evaluates the project's secrets files (every command in them runs) and prints each
 * `KEY=value`, for debugging, as Kamal's does.
 */
import path from "node:path";
import { UsageError } from "./usage";

export const SECRETS_USAGE = `pulumi-kamal secrets fetch -a ADAPTER [--account A] [--from F] [SECRETS...] | extract NAME SECRETS | print [-d DEST]
  fetch     the secrets from a vault, as JSON: --adapter (-a) 1password, bitwarden, bitwarden-sm,
            lastpass, aws_secrets_manager, doppler, gcp, passbolt, enpass (each calls its vendor's CLI)
  extract   one secret from fetch's JSON (its own key, else the key ending in /NAME)
  print     every secret of .kamal/secrets (with -d, .kamal/secrets.DEST) as KEY=value`;

export async function secrets(args: string[], cwd: string, write: (line: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "fetch" || sub === "extract") {
    const [{ secretsCommand }, { vendorCli }] = await Promise.all([import("../kamal/vault/commands"), import("../kamal/vault/adapter")]);
    write(secretsCommand([sub, ...rest], vendorCli(process.env, cwd)));
    return 0;
  }
  if (sub === "print") {
    const destination = destinationOf(rest);
    const [{ loadKamalConfig }, { SecretsFiles }] = await Promise.all([import("../kamal/config"), import("../kamal/secrets")]);
    const cfg = loadKamalConfig({ file: path.join(cwd, "config/deploy.yml"), destination });
    const files = new SecretsFiles({ appRoot: cwd, kamal: cfg.kamal, destination, secretsPath: cfg.secretsPath });
    for (const [key, value] of Object.entries(files.all())) write(`${key}=${value}`);
    return 0;
  }
  throw new UsageError(`secrets needs one of: fetch, extract, print\n${SECRETS_USAGE}`);
}

function destinationOf(args: string[]): string | undefined {
  let destination: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const m = /^(?:-d|--destination)(?:=(.*))?$/.exec(args[i]) ?? /^-d(.+)$/.exec(args[i]);
    if (!m) throw new UsageError(`secrets print takes only -d DESTINATION, not ${args[i]}`);
    destination = m[1] ?? args[++i];
    if (!destination) throw new UsageError("-d needs a destination");
  }
  return destination;
}

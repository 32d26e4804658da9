/**
 * A Kamal project's hook run by a CLI command itself (not by an update): `docker-setup`, which
 * Kamal runs at the end of `kamal server bootstrap` (and so of `kamal setup`). Run as Kamal
 * runs its hooks: the file itself, in the app's root, with the KAMAL_* env of the command;
 * skipped with `-H`. A project without deploy.yml or without the file has no such hook.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { hooksSkipped } from "../components/skipHooks";
import { loadKamalConfig } from "../kamal/config";
import { kamalTime } from "../provider/commands/audit";
import { performer } from "../provider/handlers/common";
import { execLocal } from "../provider/local/run";

export interface ProjectHookRun {
  /** The project's directory (where config/deploy.yml is). */
  dir: string;
  destination?: string;
  hook: string;
  /** Kamal's details: the hosts, the command and subcommand. */
  hosts: string[];
  command: string;
  subcommand: string;
  write: (line: string) => void;
}

/** Runs the hook when the project has it; says so when -H skips it. Throws naming the hook
 * and its last output lines when it fails. */
export async function runProjectHook(o: ProjectHookRun): Promise<void> {
  const deployYml = path.join(o.dir, "config/deploy.yml");
  if (!existsSync(deployYml)) return;
  const cfg = loadKamalConfig({ file: deployYml, destination: o.destination });
  const file = path.resolve(o.dir, cfg.hooksPath, o.hook);
  if (!existsSync(file)) return;
  if (hooksSkipped(undefined)) {
    o.write(`${cfg.hooksPath}/${o.hook}: not run (--skip-hooks)`);
    return;
  }
  o.write(`Running the ${o.hook} hook...`);
  const env: Record<string, string> = {
    KAMAL_RECORDED_AT: kamalTime(),
    KAMAL_PERFORMER: performer(o.dir),
    KAMAL_SERVICE: cfg.service,
    ...(cfg.destination ? { KAMAL_DESTINATION: cfg.destination } : {}),
    KAMAL_HOSTS: o.hosts.join(","),
    KAMAL_COMMAND: o.command,
    KAMAL_SUBCOMMAND: o.subcommand,
    KAMAL_LOCK: "true",
  };
  try {
    await execLocal({ argv: [file] }, { cwd: o.dir, env, onLine: (l) => o.write(`  ${o.hook}: ${l}`), timeoutMs: 600_000 });
  } catch (e) {
    throw new Error(`Hook \`${o.hook}\` failed: ${(e as Error).message}`);
  }
}

/**
 * The deploy lock, in Kamal 2's place and format (`kamal lock`): a directory
 * `<run directory>/lock-<service>[-<destination>]` (`.kamal` in the SSH user's home unless set), created with `mkdir` (atomic:
 * the second taker fails), holding `details`, the base64 of three lines:
 *
 *     Locked by: <holder> at <ISO time>
 *     Version: <version>
 *     Message: <message>
 *
 * Kamal takes it on its primary host; this provider takes it on every host it changes, so a
 * concurrent `kamal deploy` (or a second stack) waits or refuses whichever host it reads.
 */
import { Command } from "./command";
import { shellJoin, shellQuote } from "./shell";
import { RUN_DIRECTORY, trimmedRunDirectory } from "../config/values";

/** Kamal's message for the lock a deploy takes by itself (not `kamal lock acquire -m`). */
export const AUTOMATIC_LOCK_MESSAGE = "Automatic deploy lock";

/** The lock directory in the run directory (Kamal's `run_directory`, `.kamal` unless set;
 * relative to the SSH user's home unless absolute). */
export function lockDir(service: string, destination?: string, runDirectory = RUN_DIRECTORY): string {
  return `${trimmedRunDirectory(runDirectory)}/${["lock", service, destination].filter(Boolean).join("-")}`;
}

export interface LockDetails {
  holder: string;
  at: string;
  version: string;
  message: string;
}

export function lockDetailsText(d: LockDetails): string {
  return `Locked by: ${d.holder} at ${d.at}\nVersion: ${d.version}\nMessage: ${d.message}`;
}

/** Parses the decoded details (Kamal's or ours); undefined when unreadable. */
export function parseLockDetails(text: string): LockDetails | undefined {
  const m = /^Locked by: (.*) at (\S+)\s*\nVersion: (.*)\nMessage: ([\s\S]*)$/.exec(text.trim());
  return m ? { holder: m[1], at: m[2], version: m[3], message: m[4].trim() } : undefined;
}

/** Takes the lock: fails with mkdir's "File exists" when anyone holds it. Not repeatable
 * (a second run finds its own lock). */
export function acquireLock(dir: string, details: LockDetails): Command {
  const encoded = Buffer.from(lockDetailsText(details)).toString("base64");
  const mkdir = `{ ${shellJoin(["mkdir", dir])} 2>/dev/null || { ${shellJoin(["mkdir", "-p", dir.slice(0, dir.lastIndexOf("/"))])} && ${shellJoin(["mkdir", dir])}; }; }`;
  return Command.change(`${mkdir} && ${shellJoin(["printf", "%s\\n", encoded])} > ${shellQuote(`${dir}/details`)}`, { repeatable: false, engine: false });
}

/** The holder's details, decoded (exit 1 when there is no lock). */
export function readLock(dir: string): Command {
  return Command.read(`${shellJoin(["base64", "-d", `${dir}/details`])} 2>/dev/null || ${shellJoin(["test", "-d", dir])}`, { engine: false });
}

/** Releases the lock only when it still holds exactly these details: never another's (so
 * running it again after a reconnect is safe). */
export function releaseLock(dir: string, details: LockDetails): Command {
  const encoded = Buffer.from(lockDetailsText(details)).toString("base64");
  return Command.change(`if [ "$(cat ${shellQuote(`${dir}/details`)} 2>/dev/null)" = ${shellQuote(encoded)} ]; then ${shellJoin(["rm", "-rf", dir])}; fi`, { repeatable: true, engine: false });
}

/** Removes whatever lock is there (a stale one, on purpose). */
export function breakLock(dir: string): Command {
  return Command.change(["rm", "-rf", dir], { repeatable: true, engine: false });
}

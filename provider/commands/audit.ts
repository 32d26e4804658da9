/**
 * Kamal's audit log, in its place and format (`kamal audit`): `<run directory>/<service>[-<destination>]-audit.log`
 * in the SSH user's home, one line per event, tags in brackets then the message:
 *
 *     [2026-12-02T10:00:00Z] [ops@example.com] [production] [web] Started app version v2 (was v1)
 *
 * Kamal's tags are the time, the performer (git email, else the login name), the
 * destination, and the role where there is one; a host's log is shared with `kamal` runs.
 */
import { Command } from "./command";
import { shellJoin, shellQuote } from "./shell";
import { RUN_DIRECTORY, trimmedRunDirectory } from "../config/values";

export function auditFile(service: string, destination?: string, runDirectory = RUN_DIRECTORY): string {
  return `${trimmedRunDirectory(runDirectory)}/${[service, destination, "audit.log"].filter(Boolean).join("-")}`;
}

export interface AuditTags {
  recordedAt: string;
  performer: string;
  destination?: string;
  role?: string;
}

/** One line: no newline inside (a message's own line breaks become spaces). */
export function auditLine(tags: AuditTags, message: string): string {
  const shown = [tags.recordedAt, tags.performer, tags.destination, tags.role].filter((t): t is string => !!t).map((t) => `[${t}]`);
  return `${shown.join(" ")} ${message}`.replace(/[\r\n]+/g, " ");
}

/** Appends a line to the log (its directory made first). */
export function recordAudit(file: string, line: string): Command {
  // Run again after a reconnect: a line written twice beats a deploy failed over its log.
  return Command.change(`${shellJoin(["mkdir", "-p", file.slice(0, file.lastIndexOf("/"))])} && ${shellJoin(["printf", "%s\\n", line])} >> ${shellQuote(file)}`, { repeatable: true, engine: false });
}

/** The last `lines` lines (nothing, and exit 0, when there is no log yet). */
export function revealAudit(file: string, lines = 50): Command {
  return Command.read(`if [ -f ${shellQuote(file)} ]; then ${shellJoin(["tail", "-n", String(lines), file])}; fi`, { engine: false });
}

/** The time as Kamal writes it (audit lines, lock details, KAMAL_RECORDED_AT): ISO 8601
 * in UTC, to the second. */
export function kamalTime(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}

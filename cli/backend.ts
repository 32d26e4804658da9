/**
 * Where a project keeps its stacks' state (Pulumi's backends) and how the stacks' secrets
 * are encrypted: what `init --backend` and `state move --to` take, checked before anything is
 * written, and what the engine says when another deployer holds a stack's lock.
 *
 * A file backend is one machine's: a team keeps state where every deployer reaches it (an
 * object store through Pulumi's `s3://`, `gs://`, `azblob://` backends, or Pulumi Cloud).
 */
import { goneFromThisMachine } from "../provider/processHere";
import { UsageError } from "./usage";

export type BackendKind = "file" | "s3" | "gs" | "azblob" | "cloud";

export interface Backend {
  url: string;
  kind: BackendKind;
  /** Reached by every deployer (not a directory of one machine). */
  shared: boolean;
}

/** Where `init` keeps state when not told: in the project, on the machine that ran init. */
export const LOCAL_STATE_DIR = ".kamal/pulumi/state";
export const DEFAULT_BACKEND = `file://./${LOCAL_STATE_DIR}`;

const FORMS = "s3://BUCKET[/PREFIX][?endpoint=…&region=…], gs://BUCKET[/PREFIX], azblob://CONTAINER[/PREFIX], file://PATH, or https://api.pulumi.com (Pulumi Cloud)";

/** A backend URL as Pulumi takes it, checked; the error names the option, never the value
 * (a URL may carry an account or a key). */
export function parseBackend(url: string, option = "--backend"): Backend {
  const scheme = /^([a-z0-9]+):\/\//.exec(url)?.[1];
  const rest = scheme ? url.slice(scheme.length + 3) : "";
  const bucket = rest.split(/[/?]/)[0];
  switch (scheme) {
    case "file":
      if (!rest) throw new UsageError(`${option}: file:// needs a directory, e.g. file://~/.pulumi-state or file://./${LOCAL_STATE_DIR}`);
      return { url, kind: "file", shared: false };
    case "s3":
    case "gs":
    case "azblob":
      if (!bucket) throw new UsageError(`${option}: ${scheme}:// needs a ${scheme === "azblob" ? "container" : "bucket"}: ${FORMS}`);
      if (scheme === "s3" && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new UsageError(`${option}: the bucket must be an S3 bucket name (3-63 lowercase letters, digits, dots and dashes)`);
      return { url, kind: scheme, shared: true };
    case "https":
    case "http":
      return { url, kind: "cloud", shared: true };
    default:
      throw new UsageError(`${option}: expected ${FORMS}`);
  }
}

/** A backend named without its query (an endpoint, a region: nothing secret, but long). */
export function backendName(b: Backend): string {
  return b.url.split("?")[0];
}

/** The secrets providers Pulumi takes for a stack: a passphrase (every deployer has the same
 * one, PULUMI_CONFIG_PASSPHRASE), a cloud KMS key, or Pulumi Cloud's own ("default"). */
export function parseSecretsProvider(value: string | undefined, backend: Backend, option = "--secrets-provider"): string {
  const chosen = value ?? (backend.kind === "cloud" ? "default" : "passphrase");
  if (chosen === "passphrase" || chosen === "default") {
    if (chosen === "default" && backend.kind !== "cloud") throw new UsageError(`${option}: "default" is Pulumi Cloud's; with a ${backend.kind}:// backend use passphrase or a KMS key (awskms://, gcpkms://, azurekeyvault://, hashivault://)`);
    return chosen;
  }
  if (/^(awskms|gcpkms|azurekeyvault|hashivault):\/\/\S+$/.test(chosen)) return chosen;
  throw new UsageError(`${option}: expected passphrase, default (Pulumi Cloud) or a KMS key URL (awskms://…, gcpkms://…, azurekeyvault://…, hashivault://…)`);
}

/** What the Pulumi CLI needs in its environment for this backend: an S3-compatible server
 * (an endpoint in the URL) answers without the response checksums AWS's SDK looks for, and
 * the SDK would warn about each response. */
export function backendEnv(url: string | undefined): Record<string, string> {
  if (!url?.startsWith("s3://") || !/[?&]endpoint=/.test(url) || process.env.AWS_RESPONSE_CHECKSUM_VALIDATION) return {};
  return { AWS_RESPONSE_CHECKSUM_VALIDATION: "when_required" };
}

/** A lock on a stack in a DIY backend, as the engine reports it. */
export interface StackLock {
  user: string;
  host: string;
  pid: number;
  at: string;
}

/** The locks the engine names when it refuses an update because the stack is locked
 * ("the stack is currently locked by N lock(s) … created by USER@HOST (pid N) at TIME");
 * undefined when the text is not that refusal. */
export function stackLocks(text: string): StackLock[] | undefined {
  if (!/the stack is currently locked by \d+ lock/.test(text)) return undefined;
  return [...text.matchAll(/created by (\S+?)@(\S+) \(pid (\d+)\) at (\S+)/g)].map((m) => ({ user: m[1], host: m[2], pid: Number(m[3]), at: m[4] }));
}

/** A lock taken on this machine by a process that is gone (a deploy killed with kill -9, a
 * closed laptop lid does not count: its process still exists). */
export function leftByDeadProcess(lock: StackLock): boolean {
  return goneFromThisMachine(lock.host, lock.pid);
}

/** The refusal said to a deployer: who holds the lock, since when, and what to do. */
export function lockedMessage(stack: string, locks: StackLock[]): string {
  const who = locks.length ? locks.map((l) => `${l.user}@${l.host} (pid ${l.pid}) since ${l.at}`).join(", ") : "another deployer";
  return [
    `stack ${stack} is being changed by ${who}: its backend holds the stack's lock, so this deploy did not start (nothing changed).`,
    "Wait for that deploy to end and run this again. If it is gone (killed, its machine lost), clear the lock with `pulumi-kamal unlock` and deploy again: the next deploy converges.",
  ].join("\n");
}

/** The engine's failure when the backend itself failed (it did not answer, refused a write):
 * said naming the backend, with what it means for the hosts; undefined for any other
 * failure. URLs lose their query (long, and not the user's words). */
export function backendFailure(text: string, backendUrl: string | undefined): string | undefined {
  if (!/failed to save snapshot|blob \(key|operation error S3|error reading (?:checkpoint|stack)|could not (?:load|read|write) (?:checkpoint|snapshot)/.test(text)) return undefined;
  const where = backendUrl ? backendUrl.split("?")[0] : "the stack's backend";
  const cause = (/(dial tcp [^\n]*|connection refused|no such host|i\/o timeout|AccessDenied[^\n]*|NoSuchBucket[^\n]*|InvalidAccessKeyId[^\n]*|SignatureDoesNotMatch[^\n]*)/.exec(text)?.[1] ?? "").replace(/\?[^\s"]*/g, "");
  return [
    `the state backend ${where} failed${cause ? ` (${cause})` : ""}: the update stopped there.`,
    "The hosts run what the update had done by then (pulumi-kamal details shows it); the state keeps what it last saved.",
    "Once the backend answers, deploy again: any lock this update left is cleared (from another machine: pulumi-kamal unlock first), the hosts are read, and the deploy converges.",
  ].join("\n");
}

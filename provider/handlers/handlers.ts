/**
 * What every resource kind's handlers implement: the dynamic provider's operations over the
 * resource's raw inputs (validated by its schema inside each handler) and its outputs.
 *
 * `check` and `diff` are pure functions of the inputs. What a preview must learn from the
 * hosts, and what the engine's plan tells the provider, are their own named steps, run by
 * the runtime around them (runtime.ts): `preflight` after a passing check, `planned` after a
 * new resource's check and after each diff.
 */
import type { CheckFailure } from "./common";

export type Inputs = Record<string, unknown>;

/** How long a preview waits for the hosts' answer to a preflight look. */
export const PREFLIGHT_MS = 8000;

/** A line the preview prints for a host ("[kamal] <host>: <text>"). */
export interface Notice {
  host: string;
  text: string;
}

export interface CheckResult {
  inputs: Inputs;
  failures: CheckFailure[];
  /** What the update will do that a user must know before it runs. */
  notices?: Notice[];
}

export interface DiffResult {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace?: boolean;
}

/** One resource kind's operations; `O` is what create and update record. */
export interface Handlers<O extends Inputs = Inputs> {
  /** The inputs validated by the schema, and what the preview says; no remote call. */
  check(olds: Inputs, news: Inputs): CheckResult;
  /** What only the hosts can tell at preview (a route another scope claims, the proxy a new
   * Traefik takes over, a builder's platforms), once `check` passed: further failures,
   * notices, or inputs the look decided (the takeover planned). Best effort and bounded by
   * the runtime: a host that cannot answer in time is asked by the update itself. */
  preflight?(olds: Inputs, checked: CheckResult): Promise<CheckResult>;
  /** The changes the schema declares between the recorded and the new inputs; pure. */
  diff(id: string, olds: Inputs, news: Inputs): DiffResult;
  /** The engine's plan for this resource (`changing`: it will be created or updated), for
   * what coordinates several resources of one update (a service's rollout). */
  planned?(news: Inputs, changing: boolean): void;
  create(news: Inputs): Promise<{ id: string; outs: O }>;
  update(id: string, olds: Inputs, news: Inputs): Promise<{ outs: O }>;
  read(id: string, props: Inputs): Promise<{ id: string; props: Inputs }>;
  remove(id: string, props: Inputs): Promise<void>;
}

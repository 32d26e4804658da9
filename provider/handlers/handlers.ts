/**
 * What every resource kind's handlers implement: the dynamic provider's operations over the
 * resource's raw inputs (validated by its schema inside each handler) and its outputs.
 */
import type { CheckFailure } from "./common";

export type Inputs = Record<string, unknown>;

export interface CheckResult {
  inputs: Inputs;
  failures: CheckFailure[];
}

export interface DiffResult {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace?: boolean;
}

/** One resource kind's operations; `O` is what create and update record. */
export interface Handlers<O extends Inputs = Inputs> {
  check(olds: Inputs, news: Inputs): CheckResult | Promise<CheckResult>;
  diff(id: string, olds: Inputs, news: Inputs): DiffResult | Promise<DiffResult>;
  create(news: Inputs): Promise<{ id: string; outs: O }>;
  update(id: string, olds: Inputs, news: Inputs): Promise<{ outs: O }>;
  read(id: string, props: Inputs): Promise<{ id: string; props: Inputs }>;
  remove(id: string, props: Inputs): Promise<void>;
}

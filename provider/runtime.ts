/**
 * The implementation the dynamic providers load at run time (see resources.ts): handlers by
 * resource kind. Loaded fresh by each provider process, so check/diff/read/delete always run
 * the installed code, never a copy frozen into the state.
 */
import * as accessory from "./handlers/accessory";
import * as app from "./handlers/app";
import * as envFile from "./handlers/envFile";
import * as release from "./handlers/release";
import * as hook from "./handlers/hook";
import * as image from "./handlers/image";
import * as traefik from "./handlers/traefik";
import { appendFileSync } from "node:fs";
import { progress, providerPool } from "./handlers/common";
import { PREFLIGHT_MS, type CheckResult, type Handlers, type Inputs } from "./handlers/handlers";
import { releaseOnSignals } from "./handlers/lock";
import { engineOperation } from "./engineWatch";


/** With KAMAL_SSH_STATS_FILE set, each operation appends the pool's cumulative SSH counters
 * (connections, commands, bytes per host) as a JSON line: how benchmarks see SSH cost. */
function recorded<A extends unknown[], R>(kind: string, op: string, fn: (...a: A) => Promise<R>) {
  return async (...args: A): Promise<R> => {
    // A provider process that changes hosts releases the deploy locks it holds when the
    // engine cancels it.
    releaseOnSignals();
    try {
      // Kept track of: when the engine dies, the process exits once it is done (engineWatch.ts).
      return await engineOperation(() => fn(...args));
    } finally {
      const file = process.env.KAMAL_SSH_STATS_FILE;
      if (file) appendFileSync(file, JSON.stringify({ kind, op, at: Date.now(), pid: process.pid, hosts: providerPool().snapshot() }) + "\n");
    }
  };
}

/** The engine's check: the handler's own, then its preflight look at the hosts (bounded; a
 * look that fails or is late adds nothing), then what the preview says; a new resource is
 * told to its coordinator as changing. */
function checked<O extends Inputs>(h: Handlers<O>, preflightMs: number) {
  return async (olds: Inputs, news: Inputs): Promise<CheckResult> => {
    const own = h.check(olds, news);
    let result = own;
    if (h.preflight && own.failures.length === 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<CheckResult>((resolve) => (timer = setTimeout(() => resolve(own), preflightMs)));
      result = await Promise.race([h.preflight(olds, own).catch(() => own), late]);
      clearTimeout(timer);
    }
    for (const n of result.notices ?? []) progress(n.host, n.text);
    if (result.failures.length === 0 && Object.keys(olds ?? {}).length === 0) h.planned?.(result.inputs, true);
    return { inputs: result.inputs, failures: result.failures };
  };
}

/** The engine's diff, told to the resource's coordinator. */
function diffed<O extends Inputs>(h: Handlers<O>) {
  return (id: string, olds: Inputs, news: Inputs) => {
    const d = h.diff(id, olds, news);
    h.planned?.(news, d.changes);
    return d;
  };
}

export function asProvider<O extends Record<string, unknown>>(kind: string, h: Handlers<O>, preflightMs = PREFLIGHT_MS) {
  return {
    check: checked(h, preflightMs),
    diff: diffed(h),
    create: recorded(kind, "create", h.create),
    read: recorded(kind, "read", h.read),
    update: recorded(kind, "update", h.update),
    delete: recorded(kind, "delete", h.remove),
  };
}

export const providers = {
  app: asProvider("app", app),
  traefik: asProvider("traefik", traefik),
  envFile: asProvider("envFile", envFile),
  accessory: asProvider("accessory", accessory),
  release: asProvider("release", release),
  hook: asProvider("hook", hook),
  image: asProvider("image", image),
};

export type Kind = keyof typeof providers;

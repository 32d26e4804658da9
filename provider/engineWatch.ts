/**
 * The engine that started this provider process can die without telling it: `kill -9` of
 * `pulumi`, a CI job killed, the OOM killer. Nothing will then call or stop the provider, and
 * its stdout and stderr are broken pipes: the Pulumi SDK's handler of uncaught errors writes
 * each EPIPE to that same stderr, which fails again, and the process spins at full CPU with
 * its memory growing until the machine runs out.
 *
 * Here the standard streams' write errors are taken as the engine's end, and so is a new
 * parent (the engine's process is gone). From then on the swaps in flight stop at their next
 * state and go back to the version that served (nothing would record the new one: the state
 * keeps the old), their locks are released, and the process exits once they are done.
 */
import { releaseAll } from "./handlers/lock";

let gone = false;
let inFlight = 0;
let watching = false;
/** How long the operations in flight may take to finish once the engine is gone. */
const FINISH_MS = 120_000;

/** The engine that started this process is gone: no result will be recorded. */
export function engineGone(): boolean {
  return gone;
}

/** An operation the engine asked for; the process exits only once none is in flight. */
export async function engineOperation<R>(fn: () => Promise<R>): Promise<R> {
  watchEngine();
  inFlight++;
  try {
    return await fn();
  } finally {
    inFlight--;
  }
}

function watchEngine(): void {
  if (watching) return;
  watching = true;
  const parent = process.ppid;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") onGone();
    });
  }
  const timer = setInterval(() => {
    if (process.ppid !== parent) onGone();
  }, 1000);
  timer.unref();
}

function onGone(): void {
  if (gone) return;
  gone = true;
  const deadline = Date.now() + FINISH_MS;
  const timer = setInterval(() => {
    if (inFlight > 0 && Date.now() < deadline) return;
    clearInterval(timer);
    void releaseAll().finally(() => process.exit(1));
  }, 250);
}

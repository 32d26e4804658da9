/**
 * Kamal's `--skip-hooks` (`-H`): an update whose hooks are recorded as this deploy's but not
 * run. KamalApp takes it as an argument or from the environment variable the CLI's `-H` sets.
 * No Pulumi import: the CLI reads it.
 */

/** The environment variable `pulumi-kamal -H` sets ("1"). */
export const SKIP_HOOKS_ENV = "PULUMI_KAMAL_SKIP_HOOKS";

/** Whether this update skips its hooks: the argument, else the environment's. */
export function hooksSkipped(arg: boolean | undefined, env = process.env): boolean {
  return arg ?? ["1", "true", "yes"].includes((env[SKIP_HOOKS_ENV] ?? "").trim().toLowerCase());
}

/** The errors the CLI turns into exit codes (cli/main.ts), in a module that loads nothing. */

/** A usage or setup problem: said as one paragraph, exit code 2. */
export class UsageError extends Error {}

/** A deploy the engine refused or that failed: its error lines; exit code 1. */
export class EngineError extends Error {}

/** The deploy lock is held by someone else: exit code 3. */
export class LockRefused extends Error {}

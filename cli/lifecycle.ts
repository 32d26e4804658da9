/** What the CLI must undo before it exits, noted by the modules that opened it (loaded only
 * when a command uses them). */
export const opened = { ssh: false };

/** Reading the SSH user's files on a host: its home directory, a file's content, its hash. */
import { Command } from "./command";
import { trimmedRunDirectory } from "../config/values";

/** The SSH user's home directory (where Kamal keeps .kamal/). */
export function homeDirectory(): Command {
  return Command.read('printf %s "$HOME"', { engine: false });
}

export function readFile(path: string): Command {
  return Command.read(["cat", path], { engine: false });
}

/** `<sha256> <path>`, exit 1 when there is no such file. */
export function fileHash(path: string): Command {
  return Command.read(["sha256sum", path], { engine: false });
}

/** The run directory (Kamal's `run_directory`) as an absolute path: relative ones are in the
 * SSH user's home. */
export function runDirectoryAt(home: string, runDirectory: string): string {
  const dir = trimmedRunDirectory(runDirectory);
  return dir.startsWith("/") ? dir : `${home}/${dir}`;
}

/**
 * A clean export of a git commit into a directory (Kamal 2 builds from a clean clone): the
 * commit's files only, no .git, nothing uncommitted, untracked or ignored; submodules at the
 * commits it records, from their checkouts in the repository.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { commitTree, exportCommit, unpack } from "../commands/build";
import { execLocal, pipeLocal } from "../local/run";

export async function exportGitCommit(repo: string, commit: string, dir: string, prefix = ""): Promise<void> {
  mkdirSync(path.join(dir, prefix), { recursive: true });
  await pipeLocal(exportCommit(commit, prefix ? `${prefix}/` : undefined), unpack(dir), { cwdFrom: repo });
  const tree = (await execLocal(commitTree(commit), { cwd: repo })).stdout;
  for (const entry of tree.split("\0").filter(Boolean)) {
    const [meta, sub] = entry.split("\t");
    const [mode, type, sha] = meta.split(" ");
    if (mode !== "160000" || type !== "commit") continue;
    const checkout = path.join(repo, sub);
    try {
      await exportGitCommit(checkout, sha, dir, path.join(prefix, sub));
    } catch (e) {
      throw new Error(`submodule ${path.join(prefix, sub)} at ${sha.slice(0, 7)} is not checked out here (git submodule update --init --recursive): ${(e as Error).message.split("\n")[0]}`);
    }
  }
}

/**
 * What an image is built from, read on the deploying machine when the program runs: a git
 * commit (Kamal 2's default, a clean clone of the commit) or a directory, each reduced to the
 * hash of what the builder sees, so that the same content is never built twice and preview
 * says "build" only when it changed. Also Kamal's version: the commit, with
 * `_uncommitted_<hex>` exactly when Kamal adds it (a build from the working directory of a
 * repository with uncommitted changes).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import path from "node:path";
import ignore from "@balena/dockerignore";

function git(cwd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync("git", args, { cwd, encoding: "utf8" });
  return { ok: r.status === 0, out: (r.stdout ?? "").trim(), err: (r.stderr ?? "").trim() };
}

export interface GitState {
  /** The repository's top directory. */
  root: string;
  /** HEAD's commit. */
  head: string;
  /** `git status --porcelain`: uncommitted changes, untracked files included (as Kamal reads them). */
  uncommitted: string;
}

/** The git repository holding `dir`, or undefined when it is in none (or has no commit). */
export function gitState(dir: string): GitState | undefined {
  const root = git(dir, ["rev-parse", "--show-toplevel"]);
  const head = git(dir, ["rev-parse", "HEAD"]);
  if (!root.ok || !head.ok) return undefined;
  return { root: root.out, head: head.out, uncommitted: git(dir, ["status", "--porcelain"]).out };
}

/** A commit named by a version, a tag or a branch: its full hash, or undefined. */
export function resolveCommit(root: string, rev: string): string | undefined {
  const r = git(root, ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`]);
  return r.ok ? r.out : undefined;
}

export interface ContextInput {
  source: "git" | "dir";
  path: string;
  commit?: string;
  subdir?: string;
  hash: string;
}

/** A clean export of `commit`, built from the app's directory within it (Kamal builds in the
 * clone at the path the app has in the repository). */
export function gitContext(appRoot: string, commit: string): ContextInput {
  const state = gitState(appRoot);
  if (!state) throw new Error(`${appRoot} is not in a git repository with a commit: give the build a context directory`);
  const subdir = path.relative(state.root, path.resolve(appRoot)).split(path.sep).join("/");
  const tree = git(state.root, ["rev-parse", "--verify", "--quiet", `${commit}:${subdir}`]);
  if (!tree.ok) throw new Error(`commit ${commit.slice(0, 7)} has no ${subdir || "root"} directory`);
  return { source: "git", path: state.root, commit, subdir, hash: `git-tree:${tree.out}` };
}

/** A build context's .dockerignore as the builder reads it; `exceptions`: it has a `!pattern`,
 * which may bring back a file inside an ignored directory. */
export function dockerignoreOf(contextDir: string): { ig: { ignores(rel: string): boolean }; exceptions: boolean } {
  const ignoreFile = path.join(contextDir, ".dockerignore");
  const patterns = existsSync(ignoreFile) ? readFileSync(ignoreFile, "utf8").split(/\r?\n/) : [];
  return { ig: ignore().add(patterns), exceptions: patterns.some((p) => p.trim().startsWith("!")) };
}

/** A directory as the builder sees it: every file .dockerignore leaves in, its path, mode
 * and content (a symlink: its target). */
export function dirContext(dir: string): ContextInput {
  const root = path.resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`the build context ${root} is not a directory`);
  const { ig, exceptions } = dockerignoreOf(root);
  const h = createHash("sha256");
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(root, r);
      const st = lstatSync(full);
      if (ig.ignores(r) && !(st.isDirectory() && exceptions)) continue;
      if (st.isDirectory()) {
        walk(r);
      } else if (ig.ignores(r)) {
        continue;
      } else if (st.isSymbolicLink()) {
        h.update(`l ${r} ${readlinkSync(full)}\0`);
      } else if (st.isFile()) {
        h.update(`f ${r} ${(st.mode & 0o111) !== 0 ? "x" : "-"} `).update(readFileSync(full)).update("\0");
      }
    }
  };
  walk("");
  return { source: "dir", path: root, hash: `dir:${h.digest("hex")}` };
}

/** The Dockerfile's content hash, as the build will read it. */
export function dockerfileHash(context: ContextInput, dockerfile: string): string {
  if (context.source === "git") {
    const rel = path.posix.normalize(path.posix.join(context.subdir ?? "", dockerfile));
    const blob = git(context.path, ["rev-parse", "--verify", "--quiet", `${context.commit}:${rel}`]);
    if (!blob.ok) throw new Error(`commit ${context.commit!.slice(0, 7)} has no ${rel}: commit the Dockerfile (the build reads the commit, not the working directory)`);
    return `git-blob:${blob.out}`;
  }
  const file = path.resolve(context.path, dockerfile);
  if (!existsSync(file)) throw new Error(`missing ${dockerfile} (looked for ${file})`);
  return `sha256:${createHash("sha256").update(readFileSync(file)).digest("hex")}`;
}

/**
 * Kamal's version for a deploy from `appRoot`: the commit, plus `_uncommitted_<hex>` when the
 * build reads the working directory (a context is set) and the repository has uncommitted
 * changes. Kamal's suffix is random; this one is the hash of what the build reads, so the same
 * uncommitted content is the same version (and is not built twice).
 */
export function kamalVersion(appRoot: string, o: { contextDir?: string }): string {
  const state = gitState(appRoot);
  if (!state) throw new Error(`no version given and ${appRoot} is not in a git repository with a commit: give a version`);
  if (!o.contextDir || !state.uncommitted) return state.head;
  const content = dirContext(o.contextDir).hash;
  return `${state.head}_uncommitted_${createHash("sha256").update(content).digest("hex").slice(0, 16)}`;
}

/**
 * A test app with a Dockerfile in a git repository of its own, as a Kamal project has one:
 * its files are the sandbox test app's (the static binary and busybox the sandbox built, so
 * the build pulls nothing), and one RUN step checks a build secret by its hash, leaving the
 * verdict where the app serves files (/assets/secret-check.txt).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import path from "node:path";
import { repoRoot, sandbox } from "../../testbed/sandbox";

export interface BuildApp {
  dir: string;
  /** Commits a new version of the app: APP_VERSION (what /version answers) set to `label`. */
  commit(label: string, extra?: Record<string, string>): string;
  git(...args: string[]): string;
}

export function dockerfile(label: string, secretSha256: string): string {
  return [
    "FROM scratch",
    "COPY rootfs/ /",
    `ARG SECRET_SHA256=${secretSha256}`,
    // The secret is read from BuildKit's mount and compared by hash: only the verdict stays.
    'RUN --mount=type=secret,id=BUILD_TOKEN ["/bin/sh", "-c", "if [ \\"$(/bin/busybox sha256sum /run/secrets/BUILD_TOKEN)\\" = \\"$SECRET_SHA256  /run/secrets/BUILD_TOKEN\\" ]; then echo ok > /public/assets/secret-check.txt; else echo wrong > /public/assets/secret-check.txt; fi"]',
    `ENV PATH=/bin APP_VERSION=${label}`,
    "EXPOSE 80",
    'CMD ["/app"]',
    "",
  ].join("\n");
}

/** `base`: where the app's directory goes (default test/.work; a directory outside this
 * repository for a user's project that must not see the repository's node_modules). */
export function makeBuildApp(name: string, o: { secret: string; label?: string; base?: string }): BuildApp {
  const base = o.base ?? path.join(repoRoot, "test/.work");
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(path.join(base, `${name}-`));
  const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8" }).trim();
  git("init", "-q", "-b", "main");
  git("config", "user.email", "builder@example.test");
  git("config", "user.name", "Builder");
  cpSync(path.join(sandbox().dir, "build/app-v1"), path.join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
  writeFileSync(path.join(dir, ".dockerignore"), "notes/\n");
  const sha = createHash("sha256").update(o.secret).digest("hex");
  const commit = (label: string, extra: Record<string, string> = {}) => {
    writeFileSync(path.join(dir, "Dockerfile"), dockerfile(label, sha));
    for (const [f, content] of Object.entries(extra)) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), content);
    }
    git("add", "-A");
    git("commit", "-q", "--allow-empty", "-m", label);
    return git("rev-parse", "HEAD");
  };
  commit(o.label ?? "one");
  return { dir, commit, git };
}

/**
 * Image builds: the buildx command lines as whole strings, which builder builds which
 * platform (Kamal 2's rules), deploy.yml's builder keys of Kamal 1 and 2 with Kamal's
 * refusals, and what a build context hashes to (.dockerignore applied, the commit's tree).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { dirContext, dockerfileHash, gitContext, kamalVersion } from "../../../components/buildContext";
import { builderOf } from "../../../kamal/builder";
import { normalizeKamalConfig } from "../../../kamal/config";
import { buildImage, builderName, cacheRef, createBuilder, localRegistryPort, registryHost, runLocalRegistry } from "../../../provider/commands/build";
import { imageBuild } from "../../../provider/config/image";
import { planBuilders } from "../../../provider/handlers/builders";
import { platformsOf } from "../../../provider/handlers/image";
import type { ConfigProblem } from "../../../provider/config/errors";

const base = {
  repository: "ghcr.io/acme/app",
  version: "3f2a9c1",
  tags: ["latest"],
  service: "app",
  context: { source: "git", path: "/src/app", commit: "a".repeat(40), hash: "git-tree:1" },
  dockerfileHash: "git-blob:1",
};
const cfg = (over: Record<string, unknown> = {}) => imageBuild.parse({ ...base, ...over });
const line = (c: { argv: string[] }) => c.argv.join(" ");

describe("build commands", () => {
  it("builds and pushes in Kamal's argument order; secrets by id only", () => {
    const c = cfg({ args: { RUBY_VERSION: "3.4" }, secrets: { GITHUB_TOKEN: "ghp_secret" }, target: "production", ssh: ["default=$SSH_AUTH_SOCK"], labels: { team: "ops" } });
    expect(line(buildImage(c, { platforms: [], metadataFile: "/tmp/m.json", ssh: ["default=/run/agent.sock"] }))).toBe(
      "docker buildx build --output=type=registry -t ghcr.io/acme/app:3f2a9c1 -t ghcr.io/acme/app:latest --label service=app --label team=ops " +
        "--build-arg RUBY_VERSION=3.4 --secret id=GITHUB_TOKEN --file Dockerfile --target production --ssh default=/run/agent.sock " +
        "--progress=plain --metadata-file /tmp/m.json .",
    );
    expect(line(buildImage(c, { platforms: [], metadataFile: "/m" }))).not.toContain("ghp_secret");
  });

  it("a builder container for two platforms, a registry cache, attestations", () => {
    const c = cfg({ driver: "docker-container", platforms: ["linux/amd64", "linux/arm64"], cache: { type: "registry", options: "mode=max" }, provenance: "mode=max", sbom: true });
    expect(line(buildImage(c, { builder: "kamal-local-docker-container", platforms: c.platforms, metadataFile: "/m" }))).toBe(
      "docker buildx build --output=type=registry --platform linux/amd64,linux/arm64 --builder kamal-local-docker-container " +
        "-t ghcr.io/acme/app:3f2a9c1 -t ghcr.io/acme/app:latest " +
        "--cache-to type=registry,ref=ghcr.io/acme/app-build-cache,mode=max --cache-from type=registry,ref=ghcr.io/acme/app-build-cache " +
        "--label service=app --file Dockerfile --provenance=mode=max --sbom=true --progress=plain --metadata-file /m .",
    );
  });

  it("an inline cache reads the latest tag; gha passes Kamal's allowed options; nothing pushed without push", () => {
    expect(line(buildImage(cfg({ cache: { type: "inline" }, push: false }), { platforms: [], metadataFile: "/m" }))).toBe(
      "docker buildx build --output=type=docker -t ghcr.io/acme/app:3f2a9c1 -t ghcr.io/acme/app:latest --cache-to type=inline " +
        "--cache-from type=registry,ref=ghcr.io/acme/app:latest --label service=app --file Dockerfile --progress=plain --metadata-file /m .",
    );
    const gha = cfg({ driver: "docker-container", cache: { type: "gha", options: "mode=max,scope=app,url=http://c" } });
    expect(line(buildImage(gha, { platforms: [], metadataFile: "/m" }))).toContain("--cache-to type=gha,mode=max,scope=app,url=http://c --cache-from type=gha,scope=app,url=http://c");
  });

  it("build dev's: its own export type, the -dirty tags, no cache", () => {
    const c = cfg({ version: "3f2a9c1_uncommitted_0123456789abcdef-dirty", tags: ["latest-dirty"], noCache: true });
    expect(line(buildImage(c, { platforms: ["linux/amd64"], metadataFile: "/m", output: "tar,dest=out.tar" }))).toBe(
      "docker buildx build --output=type=tar,dest=out.tar --platform linux/amd64 -t ghcr.io/acme/app:3f2a9c1_uncommitted_0123456789abcdef-dirty -t ghcr.io/acme/app:latest-dirty " +
        "--label service=app --file Dockerfile --no-cache --progress=plain --metadata-file /m .",
    );
  });

  it("names builders as Kamal 2 does", () => {
    expect(builderName(cfg())).toBeUndefined();
    expect(builderName(cfg({ driver: "docker-container" }))).toBe("kamal-local-docker-container");
    expect(builderName(cfg({ driver: "docker-container", repository: "localhost:5555/app" }))).toBe("kamal-local-registry-docker-container");
    expect(builderName(cfg({ driver: "docker-container" }), { remote: "ssh://docker@builder", local: false })).toBe("kamal-remote-ssh---docker-builder");
    expect(builderName(cfg({ driver: "docker-container" }), { remote: "ssh://docker@builder", local: true })).toBe("kamal-hybrid-docker-container-ssh---docker-builder");
    expect(line(createBuilder("kamal-local-docker-container"))).toBe("docker buildx create --name kamal-local-docker-container --driver=docker-container");
    expect(line(createBuilder("h", { platforms: ["linux/arm64"], endpoint: "unix:///tmp/b.sock", append: true }))).toBe(
      "docker buildx create --platform linux/arm64 --append --name h --driver=docker-container unix:///tmp/b.sock",
    );
    expect(line(createBuilder("kamal-local-registry-docker-container", { localRegistry: true }))).toBe(
      "docker buildx create --name kamal-local-registry-docker-container --driver=docker-container --driver-opt network=host",
    );
  });

  it("reads registries as Docker does; Kamal 2's local registry", () => {
    expect([registryHost("ghcr.io/acme/app"), registryHost("acme/app"), registryHost("localhost:5555/app"), registryHost("10.0.0.2:5000/kp/app")]).toEqual(["ghcr.io", undefined, "localhost:5555", "10.0.0.2:5000"]);
    expect([localRegistryPort("localhost:5555/app"), localRegistryPort("ghcr.io/app")]).toEqual([5555, undefined]);
    expect(cacheRef(cfg({ driver: "docker-container", cache: { type: "registry", image: "app-cache" } }))).toBe("ghcr.io/app-cache");
    expect(line(runLocalRegistry(5555))).toBe("docker run --detach -p 127.0.0.1:5555:5000 --name kamal-docker-registry registry:3");
  });

  it("reads a builder's platforms", () => {
    expect(platformsOf("Name: default\nDriver: docker\nPlatforms:        linux/amd64, linux/386\n")).toEqual(["linux/amd64", "linux/386"]);
    expect(platformsOf("Platforms: linux/amd64*, linux/arm64\n")).toEqual(["linux/amd64", "linux/arm64"]);
  });
});

describe("which builder builds what (Kamal 2)", () => {
  const remote = { connection: { host: "10.0.0.9", user: "docker", port: 22 } };
  const plan = (over: Record<string, unknown>) => planBuilders({ driver: "docker", local: true, platforms: [], repository: "r.example.com/app", ...over } as never, "amd64");
  it("local for everything without a remote", () => {
    expect(plan({ platforms: ["linux/amd64"] })).toEqual({ platforms: ["linux/amd64"], builder: undefined, local: { platforms: ["linux/amd64"] } });
  });
  it("the remote takes the other architecture; both make a hybrid builder (docker-container only)", () => {
    expect(plan({ remote, platforms: ["linux/arm64"] })).toEqual({ platforms: ["linux/arm64"], builder: undefined, remote: { platforms: ["linux/arm64"], name: "kamal-remote-ssh---docker-10-0-0-9" } });
    expect(plan({ remote, platforms: ["linux/amd64"] })).toEqual({ platforms: ["linux/amd64"], builder: undefined, local: { platforms: ["linux/amd64"] } });
    expect(plan({ remote, platforms: ["linux/amd64", "linux/arm64"], driver: "docker-container" })).toEqual({
      platforms: ["linux/amd64", "linux/arm64"],
      builder: "kamal-hybrid-docker-container-ssh---docker-10-0-0-9",
      local: { platforms: ["linux/amd64"] },
      remote: { platforms: ["linux/arm64"], name: "kamal-hybrid-docker-container-ssh---docker-10-0-0-9" },
    });
    expect(plan({ remote, platforms: ["linux/amd64", "linux/arm64"] })).toEqual({
      refused: "platforms: linux/amd64 here and linux/arm64 on ssh://docker@10.0.0.9 make one image only with the docker-container driver (the docker driver's engines cannot share a build)",
    });
  });
  it("local: false sends everything to the remote", () => {
    expect(plan({ remote, local: false, platforms: ["linux/amd64"] })).toEqual({ platforms: ["linux/amd64"], builder: undefined, remote: { platforms: ["linux/amd64"], name: "kamal-remote-ssh---docker-10-0-0-9" } });
  });
});

describe("deploy.yml's builder", () => {
  const of = (raw: unknown, kamal: 1 | 2) => {
    const problems: ConfigProblem[] = [];
    const b = builderOf(raw, kamal, problems);
    return { b, problems: problems.map((p) => `${p.path}: ${p.message}`) };
  };
  it("Kamal 2: every key", () => {
    const { b, problems } = of({
      arch: ["amd64", "arm64"], remote: "ssh://docker@builder:2222", local: true, driver: "docker-container",
      cache: { type: "registry", options: "mode=max", image: "app-cache" }, context: ".", dockerfile: "Dockerfile.production",
      target: "production", args: { RUBY_VERSION: "3.4", JOBS: 4 }, secrets: ["GITHUB_TOKEN"], ssh: "default=$SSH_AUTH_SOCK", provenance: "mode=max", sbom: true,
    }, 2);
    expect(problems).toEqual([]);
    expect(b).toEqual({
      platforms: ["linux/amd64", "linux/arm64"], driver: "docker-container", remote: { uri: "ssh://docker@builder:2222", user: "docker", host: "builder", port: 2222 }, local: true,
      cache: { type: "registry", image: "app-cache", options: "mode=max" }, context: ".", dockerfile: "Dockerfile.production", target: "production",
      args: { RUBY_VERSION: "3.4", JOBS: "4" }, secrets: ["GITHUB_TOKEN"], ssh: "default=$SSH_AUTH_SOCK", provenance: "mode=max", sbom: true,
    });
  });
  it("Kamal 2: what Kamal refuses, and what cannot be done here", () => {
    expect(of({ arch: "amd64", env: { A: "1" } }, 2).problems).toEqual(["builder.env: unknown key in Kamal 2's builder"]);
    expect(of({ arch: "amd64", local: false }, 2).problems).toEqual(["builder.local: Cannot disable local builds, no remote is set"]);
    expect(of({ arch: "amd64", cache: { type: "s3" } }, 2).problems).toEqual(["builder.cache.type: Invalid cache type: s3 (gha or registry)"]);
    expect(of({ arch: "amd64", driver: "docker", cache: { type: "registry" } }, 2).problems).toEqual(["builder.cache: the docker driver does not support caching (Kamal refuses it too): use the docker-container driver"]);
    expect(of({ arch: ["amd64", "arm64"], driver: "docker" }, 2).problems).toEqual(["builder.arch: the docker driver does not support multiple arches (Kamal refuses it too): use the docker-container driver"]);
    expect(of({ arch: "riscv64" }, 2).problems).toEqual(["builder.arch: must be amd64 or arm64"]);
    expect(of({ arch: "amd64", pack: { builder: "heroku/builder:24" } }, 2).problems).toEqual(["builder.pack: buildpacks (pack) are not supported here: build with a Dockerfile"]);
    expect(of({ arch: "amd64", driver: "cloud acme/builder" }, 2).problems).toEqual(["builder.driver: Docker Build Cloud is not supported here: use docker-container, docker, or a remote builder"]);
    expect(of({ arch: "amd64", remote: "tcp://10.0.0.9:2375" }, 2).problems).toEqual(['builder.remote: must be an SSH remote like "ssh://docker@builder" (a builder is reached over SSH here, as the hosts are)']);
    // Kamal's validator takes a boolean where it expects a string: `remote: false` is no remote.
    expect(of({ arch: "amd64", remote: false }, 2).b.remote).toBeUndefined();
  });
  it("Kamal 1: native, multiarch, remote, cached", () => {
    expect(of({ multiarch: false }, 1).b).toMatchObject({ platforms: [], driver: "docker", local: true });
    expect(of({ multiarch: false, cache: { type: "gha" } }, 1).b).toMatchObject({ driver: "docker-container", cache: { type: "gha" } });
    expect(of({}, 1).b).toMatchObject({ platforms: ["linux/amd64", "linux/arm64"], driver: "docker-container" });
    expect(of({ local: { arch: "amd64" } }, 1).b).toMatchObject({ platforms: ["linux/amd64"] });
    expect(of({ local: { arch: "amd64" }, remote: { arch: "arm64", host: "ssh://root@192.168.0.1" } }, 1).b).toMatchObject({
      platforms: ["linux/amd64", "linux/arm64"], local: true, remote: { host: "192.168.0.1", user: "root" },
    });
    expect(of({ remote: { arch: "arm64", host: "ssh://root@192.168.0.1" } }, 1).b).toMatchObject({ platforms: ["linux/arm64"], local: false });
    expect(of({ arch: "amd64" }, 1).problems).toEqual(["builder.arch: unknown key in Kamal 1's builder"]);
  });
  it("build secrets are the builder's: a deploy that does not build never needs them", () => {
    const c = normalizeKamalConfig({ service: "s", image: "i", servers: ["h"], env: { secret: ["API_TOKEN"] }, builder: { arch: "amd64", secrets: ["GITHUB_TOKEN"] } });
    expect(c.builder.secrets).toEqual(["GITHUB_TOKEN"]);
    expect(c.secretNames).toEqual(["API_TOKEN"]);
  });

    it("decides Kamal 1 or 2 when nothing else does", () => {
    const minimal = { service: "s", image: "i", servers: ["h"] };
    expect(normalizeKamalConfig({ ...minimal, builder: { multiarch: false } }).kamal).toBe(1);
    expect(normalizeKamalConfig({ ...minimal, builder: { arch: "amd64" } }).kamal).toBe(2);
  });
});

describe("build contexts", () => {
  const repo = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kp-ctx-"));
    const git = (...a: string[]) => execFileSync("git", a, { cwd: dir, encoding: "utf8" }).trim();
    git("init", "-q");
    git("config", "user.email", "t@example.test");
    git("config", "user.name", "t");
    return { dir, git };
  };

  it("a directory hashes what .dockerignore leaves in, with exceptions", () => {
    const { dir } = repo();
    writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
    writeFileSync(path.join(dir, "app.rb"), "puts 1\n");
    mkdirSync(path.join(dir, "log"));
    writeFileSync(path.join(dir, "log/dev.log"), "noise\n");
    writeFileSync(path.join(dir, "log/keep.log"), "kept\n");
    writeFileSync(path.join(dir, ".dockerignore"), "log/*\n!log/keep.log\n");
    const h1 = dirContext(dir).hash;
    writeFileSync(path.join(dir, "log/dev.log"), "more noise\n");
    expect(dirContext(dir).hash).toBe(h1);
    writeFileSync(path.join(dir, "log/keep.log"), "changed\n");
    expect(dirContext(dir).hash).not.toBe(h1);
    expect(dirContext(dir).hash).toMatch(/^dir:[0-9a-f]{64}$/);
  });

  it("a commit is its tree; Kamal's version gets _uncommitted_ only for a context over a dirty tree", () => {
    const { dir, git } = repo();
    mkdirSync(path.join(dir, "web"));
    writeFileSync(path.join(dir, "web/Dockerfile"), "FROM scratch\n");
    git("add", "-A");
    git("commit", "-qm", "one");
    const head = git("rev-parse", "HEAD");
    const ctx = gitContext(path.join(dir, "web"), head);
    expect(ctx).toEqual({ source: "git", path: dir, commit: head, subdir: "web", hash: `git-tree:${git("rev-parse", `${head}:web`)}` });
    expect(dockerfileHash(ctx, "Dockerfile")).toBe(`git-blob:${git("rev-parse", `${head}:web/Dockerfile`)}`);
    expect(() => dockerfileHash(ctx, "Dockerfile.prod")).toThrow(`commit ${head.slice(0, 7)} has no web/Dockerfile.prod: commit the Dockerfile (the build reads the commit, not the working directory)`);
    expect(kamalVersion(dir, {})).toBe(head);
    writeFileSync(path.join(dir, "web/new.txt"), "untracked\n");
    // A clean export ignores the change: the version is the commit, as Kamal's.
    expect(kamalVersion(dir, {})).toBe(head);
    const dirty = kamalVersion(dir, { contextDir: path.join(dir, "web") });
    expect(dirty).toMatch(new RegExp(`^${head}_uncommitted_[0-9a-f]{16}$`));
    // The same uncommitted content is the same version.
    expect(kamalVersion(dir, { contextDir: path.join(dir, "web") })).toBe(dirty);
  });
});

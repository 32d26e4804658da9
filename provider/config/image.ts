/**
 * An image build (Kamal's `builder`): what is built, from what, for which platforms, and
 * where it is pushed. Every field that changes what the registry gets is a `build` field: a
 * change builds and pushes again. Where the sources sit on this machine, which builder does
 * the work, its cache and the registry's credentials are `record`: another checkout of the
 * same commit, or another builder, builds nothing new.
 */
import { z } from "zod";
import { field } from "./declare";
import { duration, envKey, imageName, name, registry, sshConnectionAnywhere, version } from "./values";

const build = <T extends z.ZodType>(s: T) => field(s, { effect: "build" });
const record = <T extends z.ZodType>(s: T) => field(s, { effect: "record" });

/** "linux/amd64", "linux/arm64", "linux/arm/v7". */
export const platform = z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/v[0-9]+)?$/, { message: 'must be a platform like "linux/amd64"' });

/** A registry image (Kamal's cache image) or a gha scope; `options` as buildx takes them. */
const cache = z.strictObject({
  /** registry: the cache in an image of the registry (`<repository>-build-cache` unless
   * `image` is given; a docker-container builder); inline: in the pushed image itself (any
   * builder); gha: GitHub Actions' cache service. */
  type: z.enum(["registry", "inline", "gha"]),
  /** The cache image (registry), without the server: Kamal's `cache.image`. */
  image: z.string().min(1).optional(),
  /** buildx cache options, e.g. "mode=max". */
  options: z.string().min(1).optional(),
});

/** What the build reads: a clean export of a git commit (Kamal 2's default, a clean clone),
 * or a directory as it is. */
const context = z.strictObject({
  source: build(z.enum(["git", "dir"])),
  /** The repository's root, or the directory, on this machine. */
  path: record(z.string().startsWith("/", { message: "must be an absolute path" })),
  /** git: the commit exported. */
  commit: record(z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, { message: "must be a full git commit hash" }).optional()),
  /** git: the context's directory within the repository ("" the root). */
  subdir: build(z.string().default("")),
  /** What the builder sees: the git tree's hash, or the directory's content hash with
   * .dockerignore applied. The same content is no change. */
  hash: build(z.string().min(1)),
});

export const imageBuild = z
  .strictObject({
    /** The image without its tag, e.g. "registry.example.com/app" ("localhost:5555/app": a
     * registry on this machine, which hosts reach through their SSH connection). */
    repository: build(imageName),
    /** The tag (Kamal's version). */
    version: build(version),
    /** Further tags of the same image: Kamal's `latest` (`latest-<destination>`). */
    tags: build(z.array(version).default([])),
    /** The `service` label Kamal requires on an app image. */
    service: build(name),
    labels: build(z.record(z.string().min(1), z.string()).default({})),
    context: build(context),
    /** The Dockerfile, relative to the context (or absolute). */
    dockerfile: build(z.string().min(1).default("Dockerfile")),
    /** sha256 of the Dockerfile's content. */
    dockerfileHash: build(z.string().min(1)),
    /** The build stage (--target). */
    target: build(z.string().min(1).optional()),
    /** Build arguments (--build-arg): visible in the image's history, so never secrets. */
    args: build(z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "must be a build argument name" }), z.string()).default({})),
    /** Build secrets by id, as BuildKit mounts them (RUN --mount=type=secret,id=NAME): given
     * to the builder in its environment, never in an argument, a layer or a log. */
    secrets: field(z.record(envKey, z.string()).default({}), { effect: "build", secret: true }),
    /** SSH agent sockets or keys the build may use (--ssh), e.g. "default" or
     * "default=$SSH_AUTH_SOCK". */
    ssh: build(z.array(z.string().regex(/^[A-Za-z0-9_.-]+(=.+)?$/, { message: 'must be "default" or "id=path"' })).default([])),
    /** The platforms built: none is the builder's own. More than one makes a multi-platform
     * image (a docker-container builder). */
    platforms: build(z.array(platform).default([])),
    /** Provenance attestation (true, false or buildx's "mode=max"). */
    provenance: build(z.union([z.boolean(), z.string().min(1)]).optional()),
    /** SBOM attestation. */
    sbom: build(z.union([z.boolean(), z.string().min(1)]).optional()),
    /** Push the image (default true); false keeps it in the builder's engine. */
    push: build(z.boolean().default(true)),
    /** The BuildKit that builds: "docker", the Docker engine's own (one platform, inline
     * cache), or "docker-container", a buildx builder container (Kamal 2's default:
     * multi-platform, registry cache, attestations). */
    driver: record(z.enum(["docker", "docker-container"]).default("docker")),
    /** A remote builder (Kamal's `builder.remote`): the Docker engine of a host reached over
     * SSH, as the deploys reach their hosts (host keys verified). It builds the platforms the
     * local builder does not (all of them when `local` is false). */
    remote: record(z.strictObject({ connection: sshConnectionAnywhere, socket: z.string().startsWith("/").default("/var/run/docker.sock") }).optional()),
    /** Build locally what the local builder can (default true; false: only the remote). */
    local: record(z.boolean().default(true)),
    cache: record(cache.optional()),
    /** Build without BuildKit's cache. */
    noCache: record(z.boolean().default(false)),
    /** Credentials for pushing (and for the base images of that registry). */
    registry: record(registry.optional()),
    /** How long the build and push may take, seconds or "30m" (default 1800). */
    timeout: record(duration.default(1800)),
  })
  .superRefine((v, ctx) => {
    if (typeof v !== "object" || v === null) return;
    if (v.context?.source === "git" && !v.context.commit) ctx.addIssue({ code: "custom", path: ["context", "commit"], message: "is required for a git context" });
    if (v.local === false && !v.remote) ctx.addIssue({ code: "custom", path: ["local"], message: "cannot be false without a remote builder (Kamal: no remote is set)" });
    if (v.driver === "docker") {
      // What the Docker engine's own BuildKit cannot do (Kamal refuses the same).
      if ((v.platforms?.length ?? 0) > 1 && !v.remote) ctx.addIssue({ code: "custom", path: ["platforms"], message: "the docker driver builds one platform: use the docker-container driver for a multi-platform image, or a remote builder for the second" });
      if (v.cache && v.cache.type !== "inline") ctx.addIssue({ code: "custom", path: ["cache", "type"], message: `the docker driver cannot export a ${v.cache.type} cache: use type "inline", or the docker-container driver` });
    }
    if (v.cache?.type === "inline" && v.cache.image) ctx.addIssue({ code: "custom", path: ["cache", "image"], message: "does not apply to an inline cache (it travels in the pushed image)" });
  });
export type ImageBuildConfig = z.output<typeof imageBuild>;
export type ImageBuildInput = z.input<typeof imageBuild>;

import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ImageBuildInput } from "../provider/config/image";
import { ImageBuild, type ResourceInputs } from "../provider/resources";
import { dirContext, dockerfileHash, gitContext, gitState, kamalVersion, resolveCommit, type ContextInput } from "./buildContext";
import { configError, connectionFor, dropUnset, registryInput, resolveHost, type HostArg, type RegistryArgs, type SshArgs } from "./common";

export interface ImageArgs {
  /** The image without a tag, its registry first: "ghcr.io/acme/app". "localhost:5555/app"
   * is Kamal 2's local registry: a registry on this machine that hosts reach through their
   * SSH connection. */
  readonly repository: string;
  /** The tag pushed and deployed (Kamal's version). Default: the git commit, with Kamal's
   * `_uncommitted_<hex>` when a `context` directory is built from a working tree with
   * uncommitted changes. */
  readonly version?: pulumi.Input<string>;
  /** The `service` label Kamal requires on an app image (default: this resource's name). */
  readonly service?: string;
  /** Kamal destination: the moving tag is `latest-<destination>` instead of `latest`. */
  readonly destination?: string;
  /** The app's directory, where Kamal runs: paths are relative to it (default: the program's
   * working directory). */
  readonly appRoot?: string;
  /** A directory built as it is, uncommitted files included (Kamal's builder.context).
   * Default: a clean export of the commit `version` names (else HEAD), as Kamal 2 builds
   * from a clean clone. */
  readonly context?: string;
  /** The Dockerfile (default "Dockerfile"). */
  readonly dockerfile?: string;
  /** The build stage. */
  readonly target?: string;
  /** Build arguments: they stay in the image's history, so never secrets. */
  readonly args?: Record<string, pulumi.Input<string>>;
  /** Build secrets by id (RUN --mount=type=secret,id=NAME): handed to BuildKit in its
   * environment; never in an argument, a layer, a log, or the state unencrypted. */
  readonly secrets?: Record<string, pulumi.Input<string>>;
  /** SSH agent sockets or keys for the build ("default", "default=$SSH_AUTH_SOCK"). */
  readonly ssh?: string | string[];
  /** Platforms, e.g. ["linux/amd64", "linux/arm64"] (default: the builder's own). */
  readonly platforms?: string[];
  /** "docker" (default): the Docker engine's own BuildKit; "docker-container": a buildx
   * builder container (multi-platform images, registry cache, attestations). */
  readonly driver?: "docker" | "docker-container";
  /** A remote builder: a host's Docker engine, reached over SSH as deploys reach hosts. It
   * builds the platforms this machine's architecture does not (all of them with
   * `local: false`). */
  readonly remote?: { readonly host: HostArg; readonly ssh: SshArgs; readonly socket?: string };
  /** false: build only on the remote builder. */
  readonly local?: boolean;
  /** Build cache: "inline" (in the pushed image; any builder), "registry" (a cache image,
   * `<repository>-build-cache` unless `image`; docker-container), "gha". */
  readonly cache?: { readonly type: "registry" | "inline" | "gha"; readonly image?: string; readonly options?: string };
  readonly provenance?: boolean | string;
  readonly sbom?: boolean | string;
  /** Extra image labels (besides `service`). */
  readonly labels?: Record<string, string>;
  /** Push (default true). */
  readonly push?: boolean;
  readonly noCache?: boolean;
  /** Credentials to push (and to pull base images from the same registry). */
  readonly registry?: pulumi.Input<RegistryArgs>;
  /** How long the build and push may take, seconds or "30m" (default 1800). */
  readonly timeout?: number | string;
}

/**
 * An image built from the app's sources and pushed (`kamal build push`), in the same
 * `pulumi up` that deploys it. Its `digest` is what was pushed: give the Image to a Service
 * (`image: theImage`) and hosts pull exactly that digest, whatever the registry's tag says
 * later. Nothing is built while the sources, Dockerfile, args and secrets stay the same;
 * preview says "build" only when one of them changed.
 */
export class Image extends pulumi.ComponentResource {
  /** The image without a tag. */
  public readonly repository: string;
  /** The tag pushed (Kamal's version). */
  public readonly version: pulumi.Output<string>;
  /** "sha256:…" of what was pushed. */
  public readonly digest: pulumi.Output<string>;
  /** `<repository>@<digest>`. */
  public readonly ref: pulumi.Output<string>;
  public readonly build: ImageBuild;

  constructor(name: string, args: ImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kamal:index:Image", name, {}, opts);
    if (!args.repository) throw configError("Image", name, "repository", "is required");
    if (/:[^/]*$/.test(args.repository)) throw configError("Image", name, "repository", "must not include a tag: the version is the tag");
    const appRoot = path.resolve(args.appRoot ?? process.cwd());
    const contextDir = args.context !== undefined ? path.resolve(appRoot, args.context) : undefined;
    const dockerfile = args.dockerfile ?? "Dockerfile";
    let version: pulumi.Output<string>;
    try {
      version = pulumi.output(args.version ?? kamalVersion(appRoot, { contextDir }));
    } catch (e) {
      throw configError("Image", name, "version", (e as Error).message);
    }
    const context = version.apply((v): ContextInput => {
      try {
        if (contextDir) return dirContext(contextDir);
        const state = gitState(appRoot);
        return gitContext(appRoot, (state && resolveCommit(state.root, v)) ?? state?.head ?? "HEAD");
      } catch (e) {
        throw configError("Image", name, "context", (e as Error).message);
      }
    });
    // The Dockerfile path as the build reads it: relative to the context it runs in.
    const dockerfileInContext = contextDir ? path.relative(contextDir, path.resolve(appRoot, dockerfile)) || dockerfile : dockerfile;
    const dockerfileDigest = context.apply((c) => {
      try {
        return dockerfileHash(c, dockerfileInContext);
      } catch (e) {
        throw configError("Image", name, "dockerfile", (e as Error).message);
      }
    });
    this.repository = args.repository;
    const remote = args.remote
      ? { connection: connectionFor(args.remote.ssh, resolveHost(args.remote.host)), socket: args.remote.socket }
      : undefined;
    this.build = new ImageBuild(
      name,
      dropUnset({
        repository: args.repository,
        version,
        tags: [["latest", args.destination].filter(Boolean).join("-")],
        service: args.service ?? name,
        labels: args.labels,
        context,
        dockerfile: dockerfileInContext,
        dockerfileHash: dockerfileDigest,
        target: args.target,
        args: args.args,
        secrets: args.secrets && Object.keys(args.secrets).length ? pulumi.secret(pulumi.output(args.secrets)) : undefined,
        ssh: typeof args.ssh === "string" ? [args.ssh] : args.ssh,
        platforms: args.platforms,
        provenance: args.provenance,
        sbom: args.sbom,
        push: args.push,
        driver: args.driver,
        remote: remote ? pulumi.output(remote).apply(dropUnset) : undefined,
        local: args.local,
        cache: args.cache,
        noCache: args.noCache,
        registry: registryInput(args.registry),
        timeout: args.timeout,
      }) as ResourceInputs<ImageBuildInput>,
      // Kept as built (KamalApp's build "keep"): the build resource ignores the program too.
      { parent: this, ...(opts?.ignoreChanges ? { ignoreChanges: opts.ignoreChanges } : {}) },
    );
    this.version = version;
    this.digest = this.build.digest;
    this.ref = this.build.ref;
    this.registerOutputs({ version: this.version, digest: this.digest, ref: this.ref });
  }
}

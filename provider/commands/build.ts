/**
 * Image builds as Kamal 2 runs them (`docker buildx build`), and the commands around them:
 * builders, the registry login, the local registry, the export of a git commit. Pure: each
 * returns an argument list (run on the deploying machine without a shell, so nothing is
 * quoted), never executes anything. Secret values never appear here: a build secret is
 * named by its id and reaches the builder through its environment.
 */
import type { ImageBuildConfig } from "../config/image";

/** A command run on the deploying machine. */
export interface LocalCommand {
  argv: string[];
}

const docker = (...args: string[]): LocalCommand => ({ argv: ["docker", ...args] });

/** The registry part of an image name ("ghcr.io", "localhost:5555"), or undefined for Docker
 * Hub (a first component without "." or ":" is a namespace, as Docker reads it). */
export function registryHost(repository: string): string | undefined {
  const first = repository.split("/")[0];
  return repository.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost") ? first : undefined;
}

/** Kamal 2's local registry: a server of `localhost:PORT`, on the deploying machine. */
export function localRegistryPort(repository: string): number | undefined {
  const m = /^localhost:(\d+)\//.exec(repository);
  return m ? Number(m[1]) : undefined;
}

/** The buildx builder Kamal names for a build (none for the docker driver: the engine's
 * own). `remote`: the remote builder's Kamal URI ("ssh://docker@builder"). */
export function builderName(cfg: Pick<ImageBuildConfig, "driver" | "repository">, o: { remote?: string; local: boolean } = { local: true }): string | undefined {
  const localRegistry = localRegistryPort(cfg.repository) !== undefined;
  if (o.remote) {
    const suffix = `${o.remote.replace(/[^a-z0-9_-]/g, "-")}${localRegistry ? "-local-registry" : ""}`;
    return o.local ? `kamal-hybrid-${cfg.driver}-${suffix}` : `kamal-remote-${suffix}`;
  }
  if (cfg.driver === "docker") return undefined;
  return localRegistry ? `kamal-local-registry-${cfg.driver}` : `kamal-local-${cfg.driver}`;
}

/** The cache image Kamal uses: `cache.image` on the registry's server, else
 * `<repository>-build-cache`. */
export function cacheRef(cfg: Pick<ImageBuildConfig, "repository" | "cache">): string {
  const server = registryHost(cfg.repository);
  return cfg.cache?.image ? [server, cfg.cache.image].filter(Boolean).join("/") : `${cfg.repository}-build-cache`;
}

function cacheArgs(cfg: ImageBuildConfig): string[] {
  const c = cfg.cache;
  if (!c) return [];
  if (c.type === "inline") return ["--cache-to", "type=inline", "--cache-from", `type=registry,ref=${cfg.repository}:${cfg.tags[0] ?? cfg.version}`];
  if (c.type === "gha") {
    const allowed = (c.options ?? "").split(",").filter((o) => /^(url|url_v2|token|scope|timeout)=/.test(o));
    return ["--cache-to", ["type=gha", c.options].filter(Boolean).join(","), "--cache-from", ["type=gha", ...allowed].join(",")];
  }
  const ref = cacheRef(cfg);
  return ["--cache-to", ["type=registry", `ref=${ref}`, c.options].filter(Boolean).join(","), "--cache-from", `type=registry,ref=${ref}`];
}

const flags = (flag: string, values: Record<string, string>) => Object.keys(values).sort().flatMap((k) => [flag, `${k}=${values[k]}`]);

/**
 * `docker buildx build`, in Kamal's order: output, platforms, builder, tags, cache, labels,
 * args, secrets (ids only), Dockerfile, target, ssh, attestations; then where the result is
 * described (`--metadata-file`) and the context. Run in the context directory. `output`:
 * buildx's export type (default: the registry when pushed, else the engine).
 */
export function buildImage(
  cfg: ImageBuildConfig,
  o: { builder?: string; platforms: string[]; metadataFile: string; ssh?: string[]; output?: string },
): LocalCommand {
  const tags = [cfg.version, ...cfg.tags.filter((t) => t !== cfg.version)];
  return docker(
    "buildx", "build",
    `--output=type=${o.output ?? (cfg.push ? "registry" : "docker")}`,
    ...(o.platforms.length ? ["--platform", o.platforms.join(",")] : []),
    ...(o.builder ? ["--builder", o.builder] : []),
    ...tags.flatMap((t) => ["-t", `${cfg.repository}:${t}`]),
    ...cacheArgs(cfg),
    ...flags("--label", { service: cfg.service, ...cfg.labels }),
    ...flags("--build-arg", cfg.args),
    ...Object.keys(cfg.secrets).sort().flatMap((id) => ["--secret", `id=${id}`]),
    "--file", cfg.dockerfile,
    ...(cfg.target ? ["--target", cfg.target] : []),
    ...(o.ssh ?? cfg.ssh).flatMap((s) => ["--ssh", s]),
    ...(cfg.provenance !== undefined ? [`--provenance=${cfg.provenance}`] : []),
    ...(cfg.sbom !== undefined ? [`--sbom=${cfg.sbom}`] : []),
    ...(cfg.noCache ? ["--no-cache"] : []),
    "--progress=plain",
    "--metadata-file", o.metadataFile,
    ".",
  );
}

/** Docker's contexts and buildx's builders, as `kamal build details` shows them. */
export function listContexts(): LocalCommand {
  return docker("context", "ls");
}
export function listBuilders(): LocalCommand {
  return docker("buildx", "ls");
}

/** Whether a buildx builder exists, and its nodes' platforms. */
export function inspectBuilder(name?: string): LocalCommand {
  return docker("buildx", "inspect", ...(name ? [name] : []));
}

/** Creates Kamal's builder, a buildx builder container (or appends a node to it: a hybrid's
 * remote half). `endpoint`: a Docker endpoint (the remote engine); `network=host` lets the
 * builder container reach a registry on this machine's localhost. */
export function createBuilder(name: string, o: { platforms?: string[]; endpoint?: string; append?: boolean; localRegistry?: boolean } = {}): LocalCommand {
  return docker(
    "buildx", "create",
    ...(o.platforms?.length ? ["--platform", o.platforms.join(",")] : []),
    ...(o.append ? ["--append"] : []),
    "--name", name,
    "--driver=docker-container",
    ...(o.localRegistry ? ["--driver-opt", "network=host"] : []),
    ...(o.endpoint ? [o.endpoint] : []),
  );
}

export function removeBuilder(name: string): LocalCommand {
  return docker("buildx", "rm", name);
}

/** `docker login` on the deploying machine, the password on stdin. */
export function loginLocally(server: string, username: string): LocalCommand {
  return docker("login", server, "--username", username, "--password-stdin");
}

/** The repository digests ("repo@sha256:…") an image has in the engine, as JSON. */
export function repoDigests(ref: string): LocalCommand {
  return docker("image", "inspect", "--format", "{{json .RepoDigests}} {{.Os}}/{{.Architecture}}", ref);
}

/** Kamal 2's local registry container: started if it exists, else run (registry:3 on
 * 127.0.0.1:PORT), as `kamal registry setup`. */
export function startLocalRegistry(): LocalCommand {
  return docker("start", "kamal-docker-registry");
}
export function runLocalRegistry(port: number): LocalCommand {
  return docker("run", "--detach", "-p", `127.0.0.1:${port}:5000`, "--name", "kamal-docker-registry", "registry:3");
}

/** The engine's architecture ("x86_64", "aarch64"): what the docker driver builds natively. */
export function engineArchitecture(): LocalCommand {
  return docker("info", "--format", "{{.Architecture}}");
}

/** A git commit's files as a tar stream (no .git, no untracked or ignored files). */
export function exportCommit(commit: string, prefix?: string): LocalCommand {
  return { argv: ["git", "archive", "--format=tar", ...(prefix ? [`--prefix=${prefix}`] : []), commit] };
}

/** The submodules of a commit: `<mode> commit <sha>\t<path>` lines (mode 160000). */
export function commitTree(commit: string): LocalCommand {
  return { argv: ["git", "ls-tree", "-r", "-z", commit] };
}

/** Unpacks a tar stream (stdin) into a directory. */
export function unpack(dir: string): LocalCommand {
  return { argv: ["tar", "-x", "-C", dir] };
}

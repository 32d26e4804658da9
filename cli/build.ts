/**
 * `pulumi-kamal build`: Kamal's `kamal build push|pull|details` over the stack.
 * - push: the image of the current commit built and pushed (the stack's Image, updated alone);
 * - pull: the built image pulled onto every app host, by its digest (tagged as its version);
 * - details: which builder builds it, and what Docker's contexts and buildx builders are;
 * - create / remove: the buildx builder its builds use (none for the docker driver);
 * - dev: the working directory built as it is, tagged `-dirty`, into the local engine.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { ensureImage } from "../provider/handlers/images";
import { buildImage, builderName, inspectBuilder, listBuilders, listContexts, localRegistryPort, removeBuilder } from "../provider/commands/build";
import type { ImageBuildConfig } from "../provider/config/image";
import { execLocal, runLocal } from "../provider/local/run";
import { planBuilders, type BuilderPlan } from "../provider/handlers/builders";
import { buildEnvironment, builderWhere, dockerArch, readyBuilder, sshSources } from "../provider/handlers/image";
import type { Tunnel } from "../provider/ssh/tunnel";
import { dockerignoreOf, kamalVersion } from "../components/buildContext";
import { deploy, type EngineOptions } from "./engine";
import { projectOf } from "./pulumi";
import { connect, eachHost, type HostError } from "./remote";
import type { Deployed, ImageInState } from "./stack";
import { UsageError } from "./usage";

/** The stack's built image (one per stack, as a KamalApp builds it). */
function theImage(d: Deployed): ImageInState {
  if (d.images.length > 1) throw new UsageError(`stack ${d.stack} builds ${d.images.length} images: give --service to pick one`);
  const image = d.images[0];
  if (!image) throw new UsageError(`stack ${d.stack} has built no image yet: pulumi-kamal deploy (or build push) builds it`);
  return image;
}

/** The URNs `build push` updates: the Image and the components above it. */
async function imageTargets(o: EngineOptions, d: Deployed, service?: string): Promise<string[]> {
  const found = d.images.filter((i) => !service || i.cfg.service === service);
  if (found.length) return found.map((i) => i.urn);
  // Not built yet: the Image the program init wrote declares (KamalApp "<service>").
  const project = projectOf(o.dir)?.name;
  if (!project) throw new UsageError(`no Pulumi project in ${o.dir}`);
  const name = service ?? project;
  const prefix = `urn:pulumi:${o.stack}::${project}::kamal:index:KamalApp`;
  return [`${prefix}::${name}`, `${prefix}$kamal:index:Image::${name}-image`, `${prefix}$kamal:index:Image$pulumi-nodejs:dynamic/kamal:Image::${name}-image`];
}

export async function buildPush(o: EngineOptions, d: Deployed, opts: { version?: string; versionKey?: string; service?: string }): Promise<void> {
  await deploy(o, { version: opts.version, versionKey: opts.versionKey, target: await imageTargets(o, d, opts.service), what: "Building", command: "build push" });
}

/** Pulls the stack's built image onto every app host that runs its service: by digest. */
export async function buildPull(d: Deployed, write: (l: string) => void): Promise<{ errors: HostError[] }> {
  const image = theImage(d);
  if (!image.digest) throw new UsageError(`the stack's image ${image.cfg.repository}:${image.cfg.version} has no recorded digest: build it first (pulumi-kamal build push)`);
  const hosts = [...new Map(d.apps.filter((a) => a.cfg.service === image.cfg.service).map((a) => [a.cfg.hostName, a])).values()];
  if (!hosts.length) throw new UsageError(`stack ${d.stack} has no app host of ${image.cfg.service} to pull onto`);
  write(`Pulling ${image.cfg.repository}:${image.cfg.version} (${image.digest}) onto ${hosts.map((h) => h.cfg.hostName).join(", ")}`);
  const { errors } = await eachHost(hosts, "pulling the image", async (a) => {
    const conn = await connect(a.cfg.connection);
    const { pulled } = await ensureImage(conn, `${image.cfg.repository}:${image.cfg.version}`, a.cfg.hostName, a.cfg.registry, image.digest);
    write(`  ${a.cfg.hostName}: ${pulled ? "pulled" : "already had it"}`);
  });
  return { errors };
}

/** Kamal's `build details`: the builder, then Docker's contexts and buildx builders. */
export async function buildDetails(d: Deployed, write: (l: string) => void): Promise<void> {
  const image = d.images[0];
  if (image) {
    const plan = planBuilders(image.cfg, dockerArch());
    const kind = "refused" in plan ? `none (${plan.refused})` : plan.local && plan.remote ? "hybrid" : plan.remote ? "remote" : "local";
    const name = "refused" in plan ? undefined : (plan.builder ?? (plan.remote ? undefined : builderName(image.cfg)));
    write(`Builder: ${kind} (${image.cfg.driver} driver${name ? `, buildx builder ${name}` : ", the engine's own BuildKit"}${image.cfg.remote ? `, remote ${image.cfg.remote.connection.user}@${image.cfg.remote.connection.host}` : ""})`);
    write(`Image: ${image.cfg.repository}:${image.cfg.version}${image.digest ? ` ${image.digest}` : ""}${image.builtAt ? ` built ${image.builtAt}` : ""}${localRegistryPort(image.cfg.repository) !== undefined ? " (local registry)" : ""}`);
  } else {
    write(`Builder: stack ${d.stack} has built no image yet`);
  }
  for (const cmd of [listContexts(), listBuilders()]) {
    const r = await runLocal(cmd);
    write((r.stdout || r.stderr).trimEnd());
  }
}

/** The builder plan of the stack's image, or the reason none can build it. */
function planOf(cfg: ImageBuildConfig): BuilderPlan {
  const plan = planBuilders(cfg, dockerArch());
  if ("refused" in plan) throw new UsageError(plan.refused);
  return plan;
}

/** Runs `fn` with the stack's builder ready (a remote engine's tunnel open meanwhile). */
async function withBuilder<T>(cfg: ImageBuildConfig, plan: BuilderPlan, fn: (ready: { endpoint?: string; builder?: string }) => Promise<T>): Promise<T> {
  const tunnels: Tunnel[] = [];
  try {
    return await fn(await readyBuilder(cfg, plan, builderWhere(cfg, plan), tunnels));
  } finally {
    await Promise.all(tunnels.map((t) => t.close().catch(() => {})));
  }
}

/** Kamal's `build create`: the buildx builder the stack's builds use, created as a build
 * creates it (Kamal's name; a remote engine reached through its host's SSH connection). The
 * docker driver builds on the engine's own BuildKit: nothing to create. */
export async function buildCreate(d: Deployed, write: (l: string) => void): Promise<void> {
  const { cfg } = theImage(d);
  const plan = planOf(cfg);
  if (!plan.builder) {
    write(`Builder: the engine's own BuildKit (${cfg.driver} driver${cfg.remote ? `, remote ${cfg.remote.connection.host}` : ""}): nothing to create`);
    return;
  }
  write(`Using builder: ${plan.builder}`);
  await withBuilder(cfg, plan, async () => undefined);
  write(`Created builder ${plan.builder}`);
}

/** Kamal's `build remove`: the stack's buildx builder removed (the next build creates it again). */
export async function buildRemove(d: Deployed, write: (l: string) => void): Promise<void> {
  const { cfg } = theImage(d);
  const name = planOf(cfg).builder;
  if (!name) {
    write(`Builder: the engine's own BuildKit (${cfg.driver} driver): nothing to remove`);
    return;
  }
  write(`Using builder: ${name}`);
  if ((await runLocal(inspectBuilder(name))).code !== 0) {
    write(`No builder ${name}: nothing to remove`);
    return;
  }
  await execLocal(removeBuilder(name));
  write(`Removed builder ${name}`);
}

/** The files of the build context that git has uncommitted changes to, and those it does not
 * track, that the builder sees (.dockerignore applied): what Kamal's `build dev` warns of. */
function dirtyFiles(root: string, contextDir: string): { uncommitted: string[]; untracked: string[] } {
  const git = (...args: string[]) => {
    const r = spawnSync("git", ["-C", root, ...args], { encoding: "utf8" });
    return r.status === 0 ? r.stdout.split("\n").filter(Boolean) : [];
  };
  const { ig } = dockerignoreOf(contextDir);
  const seen = (files: string[]) =>
    files
      .map((f) => path.relative(contextDir, path.join(root, f)))
      .filter((f) => !f.startsWith("..") && !ig.ignores(f))
      .sort();
  return { uncommitted: seen(git("diff", "--name-only", "HEAD")), untracked: seen(git("ls-files", "--others", "--exclude-standard")) };
}

/** Kamal's `build dev`: the working directory built as it is (uncommitted and untracked files
 * included, and said), tagged `<version>-dirty` and `<latest>-dirty`, exported as `output`
 * says (default: into the local Docker engine); nothing pushed, nothing deployed. */
export async function buildDev(d: Deployed, o: { output: string; noCache: boolean }, write: (l: string) => void): Promise<{ image: string }> {
  const { cfg } = theImage(d);
  const contextDir = cfg.context.source === "git" ? path.join(cfg.context.path, cfg.context.subdir) : cfg.context.path;
  if (!existsSync(contextDir)) throw new UsageError(`the build context ${contextDir} does not exist on this machine (the stack was built from another checkout)`);
  if (cfg.context.source === "git") {
    const { uncommitted, untracked } = dirtyFiles(cfg.context.path, contextDir);
    for (const [files, what] of [[uncommitted, "Files with uncommitted changes"], [untracked, "Untracked files"]] as const) {
      if (!files.length) continue;
      write(`WARNING: ${what} will be present in the dev container:`);
      for (const f of files) write(`  ${f}`);
      write("");
    }
  }
  const version = `${kamalVersion(cfg.context.path, { contextDir })}-dirty`;
  const plan = planOf(cfg);
  const dev: ImageBuildConfig = { ...cfg, version, tags: cfg.tags.map((t) => `${t}-dirty`), noCache: o.noCache };
  const dir = mkdtempSync(path.join(os.tmpdir(), "kamal-pulumi-dev-"));
  try {
    await withBuilder(cfg, plan, (ready) =>
      execLocal(buildImage(dev, { builder: ready.builder, platforms: plan.platforms, metadataFile: path.join(dir, "metadata.json"), ssh: sshSources(cfg), output: o.output }), {
        cwd: contextDir,
        env: buildEnvironment(cfg, plan, ready),
        secrets: Object.values(cfg.secrets),
        timeoutMs: cfg.timeout * 1000,
        onLine: write,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const image = `${cfg.repository}:${version}`;
  write(`Built ${image}`);
  return { image };
}

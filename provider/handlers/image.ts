/**
 * An image build (Kamal's `kamal build push`), on the deploying machine: the sources (a clean
 * export of a git commit, or a directory) are built with `docker buildx build` by the
 * builder Kamal would pick (the engine's own BuildKit, a buildx builder container, a remote
 * engine over SSH, or both for two platforms) and pushed; the result is the pushed digest, so
 * that hosts pull exactly what was built. Nothing is built when the inputs are unchanged; a
 * build failure fails the resource before any host changes (the app containers depend on its
 * digest), with the builder's last lines, secrets redacted.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { imageBuild, type ImageBuildConfig } from "../config/image";
import { parseInputs } from "../config/fields";
import * as build from "../commands/build";
import { execLocal, LocalCommandError, runLocal } from "../local/run";
import { forwardFromRemotePort, forwardToRemoteSocket, type Tunnel } from "../ssh/tunnel";
import { tail } from "../ssh/redact";
import { connect, containsUnknown, diffResource, mustAct, progress, Secrets, step, StepError, validate } from "./common";
import { planBuilders, type BuilderPlan } from "./builders";
import { exportGitCommit } from "./gitExport";

import { PREFLIGHT_MS, type CheckResult, type Inputs } from "./handlers";

export interface ImageOutputs {
  /** "sha256:…" of what was pushed (the manifest, or the index of a multi-platform image). */
  digest: string;
  /** `<repository>@<digest>`: what hosts pull. */
  ref: string;
  /** The platforms the image has. */
  platformsBuilt: string[];
  builtAt: string;
}

const pathOf = (key: string) => key;
export function check(_olds: Inputs, news: Inputs): CheckResult {
  return { inputs: news, failures: validate(imageBuild, news, pathOf).failures };
}

/** A builder's platforms are read at preview only when the build would change (the build
 * itself then says what is wrong). */
export async function preflight(olds: Inputs, checked: CheckResult): Promise<CheckResult> {
  const news = checked.inputs;
  const { value } = validate(imageBuild, news, pathOf);
  const changed = Object.keys(olds).length === 0 || mustAct(imageBuild, olds, news);
  if (!value || !changed || ["platforms", "driver", "remote", "local"].some((k) => containsUnknown(news[k]))) return checked;
  const problems = await builderProblems(value);
  return { ...checked, failures: problems.map((reason) => ({ property: "", reason })) };
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  return diffResource(imageBuild, olds, news);
}

export async function create(news: Inputs) {
  const cfg = parseInputs(imageBuild, news);
  return { id: `${cfg.repository}:${cfg.version}`, outs: { ...news, ...(await buildAndPush(cfg)) } };
}

export async function update(_id: string, olds: Inputs, news: Inputs) {
  const cfg = parseInputs(imageBuild, news);
  if (!mustAct(imageBuild, olds, news)) return { outs: { ...news, ...pick(olds) } };
  return { outs: { ...news, ...(await buildAndPush(cfg)) } };
}

export async function read(id: string, props: Inputs) {
  return { id, props };
}

/** Images stay in the registry: stack history and rollbacks may name them. */
export async function remove(): Promise<void> {}

function pick(props: Inputs): Partial<ImageOutputs> {
  return Object.fromEntries(["digest", "ref", "platformsBuilt", "builtAt"].filter((k) => k in props).map((k) => [k, props[k]]));
}

/** The machine's architecture as Docker names it (Kamal's docker_arch). */
export function dockerArch(arch = os.arch()): string {
  return arch === "x64" ? "amd64" : arch === "ia32" ? "386" : arch;
}

/** What the chosen builders cannot do, said before anything runs: buildx missing, no
 * engine, a platform the local builder does not produce. */
export async function builderProblems(cfg: ImageBuildConfig): Promise<string[]> {
  const plan = planBuilders(cfg, dockerArch());
  if ("refused" in plan) return [plan.refused];
  const buildx = await runLocal(build.inspectBuilder(), { timeoutMs: PREFLIGHT_MS });
  if (buildx.code !== 0 && /is not a docker command|unknown command|buildx.*(not found|missing)/i.test(buildx.stderr)) {
    return ["builder: docker buildx is not installed on this machine (Kamal 2 builds with it too; Docker Desktop and docker-ce include it)"];
  }
  if (buildx.code !== 0) return [`builder: the local Docker engine does not answer (${tail(buildx.stderr.trim(), 2)})`];
  if (plan.local && cfg.driver === "docker") {
    const offered = platformsOf(buildx.stdout);
    const missing = plan.local.platforms.filter((p) => offered.length && !offered.includes(p));
    if (missing.length) {
      return [`platforms: ${missing.join(", ")} cannot be built by the local Docker engine's builder (it builds ${offered.join(", ")}): name a remote builder of that architecture, or register QEMU (binfmt) with the engine and use the docker-container driver`];
    }
  }
  return [];
}

/** The platforms a `docker buildx inspect` lists. */
export function platformsOf(inspect: string): string[] {
  const line = /^Platforms:\s*(.*)$/m.exec(inspect)?.[1] ?? "";
  return line.split(",").map((p) => p.trim().replace(/\*$/, "")).filter(Boolean);
}

async function buildAndPush(cfg: ImageBuildConfig): Promise<ImageOutputs> {
  const secrets = new Secrets(imageBuild, cfg);
  const plan = planBuilders(cfg, dockerArch());
  const where = "refused" in plan ? "local builder" : builderWhere(cfg, plan);
  const image = `${cfg.repository}:${cfg.version}`;
  return secrets.guard(async () => {
    if ("refused" in plan) throw new StepError(where, "choosing the builder", new Error(plan.refused));
    const t0 = Date.now();
    const dir = await step(where, cfg.context.source === "git" ? `exporting commit ${cfg.context.commit!.slice(0, 7)}` : `reading ${cfg.context.path}`, () => sources(cfg));
    const tunnels: Tunnel[] = [];
    try {
      await step(where, "preparing the registry", () => prepareRegistry(cfg));
      const { endpoint, builder } = await readyBuilder(cfg, plan, where, tunnels);
      const metadataFile = path.join(dir.root, "metadata.json");
      progress(where, `building ${image}${plan.platforms.length ? ` for ${plan.platforms.join(", ")}` : ""} (${describe(cfg, plan)})`);
      const lastLines: string[] = [];
      await step(where, `building ${image}`, () =>
        execLocal(build.buildImage(cfg, { builder, platforms: plan.platforms, metadataFile, ssh: sshSources(cfg) }), {
          cwd: dir.context,
          env: buildEnvironment(cfg, plan, { endpoint, builder }),
          secrets: secrets.list(),
          timeoutMs: cfg.timeout * 1000,
          onLine: (l) => {
            lastLines.push(l);
            if (lastLines.length > 40) lastLines.shift();
            if (/^#\d+ \[|^#\d+ (ERROR|pushing \S+ with|exporting to image$)|^ERROR/.test(l)) progress(where, l);
          },
        }).catch((e) => {
          if (e instanceof LocalCommandError) throw new LocalCommandError(e.command, e.exitCode, secrets.redact(lastLines.slice(-20).join("\n")), e.timedOut);
          throw e;
        }),
      );
      const result = await step(where, `reading the digest of ${image}`, () => pushedDigest(cfg, metadataFile, endpoint && !builder ? endpoint : undefined, plan));
      progress(where, `${cfg.push ? "pushed" : "built"} ${image} ${result.digest} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
      return { ...result, ref: `${cfg.repository}@${result.digest}`, builtAt: new Date().toISOString() };
    } finally {
      await Promise.all(tunnels.map((t) => t.close().catch(() => {})));
      rmSync(dir.root, { recursive: true, force: true });
    }
  });
}

function describe(cfg: ImageBuildConfig, plan: BuilderPlan): string {
  const parts = [plan.remote && plan.local ? "hybrid builder" : plan.remote ? `remote builder ${cfg.remote!.connection.host}` : "local builder", `${cfg.driver} driver`];
  if (cfg.context.source === "git") parts.push(`clean export of ${cfg.context.commit!.slice(0, 7)}`);
  return parts.join(", ");
}

/** Where a build runs, as its errors and progress name it: the remote builder's host, or
 * this machine's builder (a hybrid's local half included). */
export function builderWhere(cfg: ImageBuildConfig, plan: BuilderPlan): string {
  return plan.remote && !plan.local ? `builder ${cfg.remote!.connection.host}` : "local builder";
}

/** The build's environment: its secrets (BuildKit reads them from there), the remote engine
 * when no buildx builder is named. */
export function buildEnvironment(cfg: ImageBuildConfig, plan: BuilderPlan, ready: { endpoint?: string; builder?: string }): Record<string, string> {
  return { ...cfg.secrets, ...(ready.endpoint && !ready.builder ? { DOCKER_HOST: ready.endpoint } : {}), ...(plan.remote ? { BUILDKIT_NO_CLIENT_TOKEN: "1" } : {}) };
}

/** `--ssh` values with `$VAR` taken from this machine's environment (Kamal writes
 * `default=$SSH_AUTH_SOCK`, which its shell expands). */
export function sshSources(cfg: ImageBuildConfig): string[] {
  return cfg.ssh.map((s) => s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, v: string) => process.env[v] ?? ""));
}

/** The build directory: a clean export of the commit (submodules included), or the
 * directory itself. */
async function sources(cfg: ImageBuildConfig): Promise<{ root: string; context: string }> {
  const base = path.join(os.tmpdir(), "kamal-pulumi-builds");
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const root = mkdtempSync(path.join(base, `${cfg.service}-`));
  if (cfg.context.source === "dir") {
    if (!existsSync(cfg.context.path)) throw new Error(`the build context ${cfg.context.path} does not exist`);
    return { root, context: cfg.context.path };
  }
  const tree = path.join(root, "src");
  await exportGitCommit(cfg.context.path, cfg.context.commit!, tree);
  return { root, context: path.join(tree, cfg.context.subdir) };
}

/** Logged in to the registry, or Kamal 2's local registry running. */
async function prepareRegistry(cfg: ImageBuildConfig): Promise<void> {
  const local = build.localRegistryPort(cfg.repository);
  if (local !== undefined) {
    if ((await runLocal(build.startLocalRegistry())).code !== 0) await execLocal(build.runLocalRegistry(local));
    return;
  }
  if (cfg.registry) await execLocal(build.loginLocally(cfg.registry.server, cfg.registry.username), { stdin: cfg.registry.password, secrets: [cfg.registry.password] });
}

/** The remote engine as a local socket (through the host's SSH connection), and the local
 * registry's port on that host when the remote builder pushes to it. */
async function remoteEndpoint(cfg: ImageBuildConfig, plan: BuilderPlan, tunnels: Tunnel[]): Promise<string | undefined> {
  if (!plan.remote || !cfg.remote) return undefined;
  const conn = await connect(cfg.remote.connection);
  // A builder container on the remote engine is created with this endpoint: the same path on
  // every build keeps it (and its cache); the engine's own builder needs none for long.
  const socket = path.join(os.tmpdir(), "kamal-pulumi-builders", plan.builder ? `${plan.builder}.sock` : `engine-${process.pid}.sock`);
  tunnels.push(await forwardToRemoteSocket(conn, socket, cfg.remote.socket));
  const local = build.localRegistryPort(cfg.repository);
  if (local !== undefined) tunnels.push(await forwardFromRemotePort(conn, local));
  return `unix://${socket}`;
}

/** The builder a build of `cfg` runs on, ready: a remote engine reached through its host's
 * SSH connection (kept open by `tunnels` until the caller closes them), Kamal's buildx
 * builder created when missing. `endpoint`: the Docker endpoint to build on when no buildx
 * builder is named. */
export async function readyBuilder(cfg: ImageBuildConfig, plan: BuilderPlan, where: string, tunnels: Tunnel[]): Promise<{ endpoint?: string; builder?: string }> {
  const endpoint = await step(where, "connecting to the remote builder", () => remoteEndpoint(cfg, plan, tunnels));
  const builder = await step(where, "preparing the builder", () => ensureBuilder(cfg, plan, endpoint));
  return { endpoint, builder };
}

/** Kamal's buildx builder for a docker-container (or hybrid) build, created when missing or
 * when it points elsewhere; none for the docker driver (the engine's own BuildKit). */
async function ensureBuilder(cfg: ImageBuildConfig, plan: BuilderPlan, endpoint: string | undefined): Promise<string | undefined> {
  const name = plan.builder;
  if (!name) return undefined;
  const inspect = await runLocal(build.inspectBuilder(name));
  const fresh = inspect.code === 0 && (!endpoint || inspect.stdout.includes(endpoint.replace(/^unix:\/\//, "")));
  if (fresh) return name;
  if (inspect.code === 0) await runLocal(build.removeBuilder(name));
  const localRegistry = build.localRegistryPort(cfg.repository) !== undefined;
  if (plan.local && plan.remote) {
    await execLocal(build.createBuilder(name, { platforms: plan.local.platforms, localRegistry }));
    await execLocal(build.createBuilder(name, { platforms: plan.remote.platforms, endpoint, append: true, localRegistry }));
  } else {
    await execLocal(build.createBuilder(name, { endpoint, localRegistry }));
  }
  return name;
}

/** The pushed digest: buildx's metadata (the manifest it pushed); for the engine's own builder
 * it is checked against the repository digests the engine recorded when it pushed, and the
 * platform built against the one asked for: never another architecture in silence. */
async function pushedDigest(cfg: ImageBuildConfig, metadataFile: string, endpoint: string | undefined, plan: BuilderPlan): Promise<Omit<ImageOutputs, "ref" | "builtAt">> {
  const meta = existsSync(metadataFile) ? (JSON.parse(readFileSync(metadataFile, "utf8")) as Record<string, unknown>) : {};
  const reported = String(meta["containerimage.digest"] ?? "");
  if (cfg.driver === "docker") {
    const r = await execLocal(build.repoDigests(`${cfg.repository}:${cfg.version}`), { env: endpoint ? { DOCKER_HOST: endpoint } : undefined });
    const [json, platform] = r.stdout.trim().split(" ");
    const recorded = (JSON.parse(json) as string[]).filter((d) => d.startsWith(`${cfg.repository}@`)).map((d) => d.split("@")[1]);
    const digest = !cfg.push ? String(meta["containerimage.config.digest"] ?? reported) : recorded.includes(reported) ? reported : recorded[0];
    if (!digest) throw new Error(`the engine recorded no digest of ${cfg.repository} after the push`);
    if (plan.platforms.length && !plan.platforms.includes(platform)) {
      throw new Error(`the builder made ${platform}, not ${plan.platforms.join(", ")}: nothing deploys it`);
    }
    return { digest, platformsBuilt: [platform] };
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(reported)) throw new Error("buildx reported no image digest");
  return { digest: reported, platformsBuilt: plan.platforms };
}

/**
 * `pulumi-kamal build`: Kamal's `kamal build push|pull|details` over the stack.
 * - push: the image of the current commit built and pushed (the stack's Image, updated alone);
 * - pull: the built image pulled onto every app host, by its digest (tagged as its version);
 * - details: which builder builds it, and what Docker's contexts and buildx builders are.
 */
import { ensureImage } from "../provider/handlers/images";
import { builderName, listBuilders, listContexts, localRegistryPort } from "../provider/commands/build";
import { runLocal } from "../provider/local/run";
import { planBuilders } from "../provider/handlers/builders";
import { dockerArch } from "../provider/handlers/image";
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

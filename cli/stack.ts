/**
 * What a stack runs where, read from its state through the Automation API (`pulumi stack
 * export --show-secrets`: secrets decrypted in this process's memory only, never printed):
 * every app container, accessory and Traefik with its host's SSH settings, parsed with the
 * provider's own schemas (parseStored: any earlier version's state reads).
 */
import path from "node:path";
import { parseStored } from "../provider/config/fields";
import { accessoryContainer, appContainer, traefikContainer, type AccessoryContainerConfig, type AppContainerConfig, type TraefikContainerConfig } from "../provider/config/schemas";
import { imageBuild, type ImageBuildConfig } from "../provider/config/image";
import { containerName } from "../provider/commands/app";
import { accessoryName } from "../provider/commands/accessory";
import { exportStack, firstError, pulumi, projectOf, selectedStack } from "./pulumi";
import { UsageError } from "./usage";

export interface AppOnHost {
  kind: "app";
  /** The resource's name in the program. */
  resource: string;
  cfg: AppContainerConfig;
  /** The container the state says serves. */
  container: string;
  status: string;
  imageDigest?: string;
}

export interface AccessoryOnHost {
  kind: "accessory";
  resource: string;
  cfg: AccessoryContainerConfig;
  container: string;
  status: string;
}

export interface TraefikOnHost {
  kind: "traefik";
  resource: string;
  cfg: TraefikContainerConfig;
  container: string;
  status: string;
}

/** An image the stack built (an Image resource): what was pushed, and from what. */
export interface ImageInState {
  kind: "image";
  resource: string;
  urn: string;
  cfg: ImageBuildConfig;
  digest?: string;
  builtAt?: string;
}

export interface Deployed {
  stack: string;
  dir: string;
  apps: AppOnHost[];
  accessories: AccessoryOnHost[];
  traefiks: TraefikOnHost[];
  images: ImageInState[];
  /** Every resource of the state, by URN and type (what a targeted update names). */
  resources: { urn: string; type: string }[];
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** A value of `stack export --show-secrets` with every secret replaced by its plaintext. */
export function unwrapSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270") {
      if (typeof o.plaintext !== "string") throw new Error("the stack's secrets are still encrypted (the export did not decrypt them)");
      return unwrapSecrets(JSON.parse(o.plaintext));
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

interface StateResource {
  urn: string;
  type: string;
  outputs?: Record<string, unknown>;
  delete?: boolean;
}

const TYPE = "pulumi-nodejs:dynamic/kamal:";

/** The resources of an exported deployment (`deployment.resources`), as this CLI sees them. */
export function deployedFrom(stack: string, dir: string, deployment: { resources?: StateResource[] }): Deployed {
  const out: Deployed = { stack, dir, apps: [], accessories: [], traefiks: [], images: [], resources: (deployment.resources ?? []).map((r) => ({ urn: r.urn, type: r.type })) };
  for (const r of deployment.resources ?? []) {
    if (!r.type.startsWith(TYPE) || r.delete || !r.outputs) continue;
    const outputs = unwrapSecrets(r.outputs) as Record<string, unknown>;
    const resource = r.urn.slice(r.urn.lastIndexOf("::") + 2);
    const status = String(outputs.status ?? "unknown");
    switch (r.type.slice(TYPE.length)) {
      case "AppContainer": {
        const cfg = parseStored(appContainer, outputs);
        out.apps.push({ kind: "app", resource, cfg, container: String(outputs.containerName || containerName(cfg)), status, imageDigest: outputs.imageDigest ? String(outputs.imageDigest) : undefined });
        break;
      }
      case "AccessoryContainer": {
        const cfg = parseStored(accessoryContainer, outputs);
        out.accessories.push({ kind: "accessory", resource, cfg, container: accessoryName(cfg), status });
        break;
      }
      case "TraefikContainer": {
        const cfg = parseStored(traefikContainer, outputs);
        out.traefiks.push({ kind: "traefik", resource, cfg, container: "traefik", status });
        break;
      }
      case "Image": {
        const cfg = parseStored(imageBuild, outputs);
        out.images.push({ kind: "image", resource, urn: r.urn, cfg, digest: outputs.digest ? String(outputs.digest) : undefined, builtAt: outputs.builtAt ? String(outputs.builtAt) : undefined });
        break;
      }
    }
  }
  const byHost = <T extends { cfg: { hostName: string } }>(a: T, b: T) => a.cfg.hostName.localeCompare(b.cfg.hostName);
  out.apps.sort((a, b) => a.cfg.service.localeCompare(b.cfg.service) || a.cfg.role.localeCompare(b.cfg.role) || byHost(a, b));
  out.accessories.sort(byHost);
  out.traefiks.sort(byHost);
  return out;
}

export { UsageError };

/** The project's directory and stack (`stack`, else the project's selected one). */
export async function stackOf(opts: { cwd?: string; stack?: string }): Promise<{ dir: string; stack: string }> {
  const dir = path.resolve(opts.cwd ?? process.cwd());
  const project = projectOf(dir);
  if (!project) throw new UsageError(`no Pulumi project in ${dir} (no Pulumi.yaml): run this in the project's directory or give --cwd`);
  let stack = opts.stack ?? selectedStack(project);
  if (!stack) {
    const r = await pulumi(dir, ["stack", "--show-name"]);
    stack = r.code === 0 ? r.stdout.trim() : undefined;
  }
  if (!stack) throw new UsageError(`no stack is selected in ${dir}: give --stack NAME (pulumi stack ls lists them)`);
  return { dir, stack };
}

/** The stack's state: `stack` or the project's selected one, in the project at `cwd`. */
export async function loadDeployed(opts: { cwd?: string; stack?: string }): Promise<Deployed> {
  const { dir, stack } = await stackOf(opts);
  let deployment: { deployment?: { resources?: StateResource[] } };
  try {
    deployment = await exportStack(dir, stack);
  } catch (e) {
    throw new UsageError(`cannot read the state of stack ${stack} in ${dir}: ${(e as Error).message}`);
  }
  return deployedFrom(stack, dir, deployment.deployment ?? {});
}

/** The Pulumi CLI's message, without the Automation API's command dump and stack trace. */
export function firstLine(e: unknown): string {
  return firstError(String((e as { stderr?: string }).stderr || (e as Error).message || e));
}

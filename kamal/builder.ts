/**
 * deploy.yml's `builder`, as Kamal 1.9 and 2.x read it, mapped to what an Image build takes:
 * which builder (the engine's own, a buildx builder container, a remote engine over SSH, or
 * both), which platforms, and what goes into the build. Keys Kamal does not know are refused
 * as Kamal refuses them; the few Kamal keys with no equivalent here (buildpacks, Docker Build
 * Cloud, a non-SSH remote) are refused with the reason.
 */
import { z } from "zod";
import type { ConfigProblem } from "../provider/config/errors";

/** Where Kamal expects a string it also takes a number or a boolean (its validator's
 * "stringish"); `false` there reads as unset in Kamal's Ruby (`remote: false`: no remote). */
const stringish = z.union([z.string(), z.number(), z.boolean()]).transform((v) => (v === false ? undefined : String(v)));
/** A build argument: an empty value (YAML null, as ERB that printed nothing leaves) is "". */
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]).transform((v) => (v === null ? "" : String(v)));
const cache = z.strictObject({ type: stringish.optional(), options: stringish.optional(), image: stringish.optional() });
const attestation = z.union([z.boolean(), z.string()]);

/** What both Kamal majors' builders take alike. */
const shared = {
  cache: cache.optional(),
  context: stringish.optional(),
  dockerfile: stringish.optional(),
  target: stringish.optional(),
  args: z.record(z.string(), scalar).optional(),
  secrets: z.array(z.string()).optional(),
  ssh: stringish.optional(),
};

/** Kamal 2's builder (lib/kamal/configuration/docs/builder.yml). */
const kamal2 = z.strictObject({
  ...shared,
  arch: z.union([stringish, z.array(stringish)]).optional(),
  remote: stringish.optional(),
  local: z.boolean().optional(),
  driver: stringish.optional(),
  pack: z.strictObject({ builder: stringish.optional(), buildpacks: z.array(stringish).optional() }).optional(),
  provenance: attestation.optional(),
  sbom: attestation.optional(),
});

/** Kamal 1.9's builder. */
const kamal1 = z.strictObject({
  ...shared,
  multiarch: z.boolean().optional(),
  local: z.strictObject({ arch: stringish.optional(), host: stringish.optional() }).optional(),
  remote: z.strictObject({ arch: stringish.optional(), host: stringish.optional() }).optional(),
});

export const builderSchema = z.record(z.string(), z.unknown());

/** Whether a builder section is written for Kamal 1 (multiarch, local/remote as objects) or 2
 * (arch, driver, attestations, a remote URI, local as a boolean); undefined: either. */
export function builderKamalVersion(b: unknown): 1 | 2 | undefined {
  if (!b || typeof b !== "object") return undefined;
  const o = b as Record<string, unknown>;
  if (["arch", "driver", "provenance", "sbom", "pack"].some((k) => o[k] !== undefined) || typeof o.remote === "string" || typeof o.local === "boolean") return 2;
  if (o.multiarch !== undefined || (o.local && typeof o.local === "object") || (o.remote && typeof o.remote === "object")) return 1;
  return undefined;
}

/** How the app's image is built. Paths are relative to the app's root, as Kamal runs there. */
export interface KamalBuilder {
  /** "linux/<arch>"; none: the builder's own. */
  platforms: string[];
  driver: "docker" | "docker-container";
  /** A remote builder reached over SSH: Kamal's `ssh://user@host[:port]`. */
  remote?: { uri: string; host: string; user: string; port?: number };
  /** false: only the remote builder builds. */
  local: boolean;
  cache?: { type: "registry" | "gha"; image?: string; options?: string };
  /** A directory built as it is; undefined: a clean export of the commit (Kamal's git clone). */
  context?: string;
  dockerfile: string;
  target?: string;
  args: Record<string, string>;
  /** Names of secrets (from .kamal/secrets or Pulumi config). */
  secrets: string[];
  ssh?: string;
  provenance?: boolean | string;
  sbom?: boolean | string;
}

const ARCHES = ["amd64", "arm64"];

function remoteOf(uri: string, at: string, problems: ConfigProblem[]): KamalBuilder["remote"] {
  const m = /^ssh:\/\/(?:([^@/]+)@)?([^:/]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(uri);
  if (!m) {
    problems.push({ path: at, message: 'must be an SSH remote like "ssh://docker@builder" (a builder is reached over SSH here, as the hosts are)' });
    return undefined;
  }
  return { uri, user: m[1] ?? "root", host: m[2].replace(/^\[|\]$/g, ""), ...(m[3] ? { port: Number(m[3]) } : {}) };
}

function cacheOf(c: z.output<typeof cache> | undefined, at: string, problems: ConfigProblem[]): KamalBuilder["cache"] {
  if (!c) return undefined;
  // Kamal: "Invalid cache type" unless gha or registry.
  if (c.type !== "gha" && c.type !== "registry") {
    problems.push({ path: `${at}.type`, message: `Invalid cache type: ${c.type ?? "(none)"} (gha or registry)` });
    return undefined;
  }
  return { type: c.type, ...(c.image ? { image: c.image } : {}), ...(c.options ? { options: c.options } : {}) };
}

/** deploy.yml's builder as the Image build takes it; problems with their paths. */
export function builderOf(raw: unknown, kamal: 1 | 2, problems: ConfigProblem[]): KamalBuilder {
  const at = "builder";
  const schema = kamal === 2 ? kamal2 : kamal1;
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const p = [at, ...issue.path.map(String)].join(".");
      if (issue.code === "unrecognized_keys") for (const k of issue.keys) problems.push({ path: `${p}.${k}`, message: `unknown key in Kamal ${kamal}'s builder` });
      else problems.push({ path: p, message: issue.message });
    }
    return { platforms: [], driver: "docker", local: true, dockerfile: "Dockerfile", args: {}, secrets: [] };
  }
  const common = {
    ...(parsed.data.context ? { context: parsed.data.context } : {}),
    dockerfile: parsed.data.dockerfile ?? "Dockerfile",
    ...(parsed.data.target ? { target: parsed.data.target } : {}),
    args: parsed.data.args ?? {},
    secrets: parsed.data.secrets ?? [],
    ...(parsed.data.ssh ? { ssh: parsed.data.ssh } : {}),
  };
  if (kamal === 1) {
    const b = parsed.data as z.output<typeof kamal1>;
    if (b.local?.host && !/^(unix:\/\/)?\/var\/run\/docker\.sock$/.test(b.local.host)) {
      problems.push({ path: `${at}.local.host`, message: "the local builder is this machine's Docker engine (set DOCKER_HOST to use another)" });
    }
    const remote = b.remote?.host ? remoteOf(b.remote.host, `${at}.remote.host`, problems) : undefined;
    const cached = cacheOf(b.cache, `${at}.cache`, problems);
    if (b.multiarch === false) {
      // Kamal 1's native build: the engine's own builder, its own platform (a cache makes it
      // a buildx builder container, as Kamal's native cached builder).
      return { ...common, platforms: [], driver: cached ? "docker-container" : "docker", local: true, ...(cached ? { cache: cached } : {}) };
    }
    const arches = [...new Set([b.local?.arch, b.remote?.arch].filter((a): a is string => !!a))];
    for (const a of arches) if (!ARCHES.includes(a)) problems.push({ path: `${at}.${a === b.local?.arch ? "local" : "remote"}.arch`, message: `must be amd64 or arm64` });
    return {
      ...common,
      platforms: (remote ? arches : b.local?.arch ? [b.local.arch] : ARCHES).map((a) => `linux/${a}`),
      driver: "docker-container",
      ...(remote ? { remote } : {}),
      local: !remote || !!b.local,
      ...(cached ? { cache: cached } : {}),
    };
  }
  const b = parsed.data as z.output<typeof kamal2>;
  const driver = b.driver ?? "docker-container";
  if (b.pack) problems.push({ path: `${at}.pack`, message: "buildpacks (pack) are not supported here: build with a Dockerfile" });
  if (driver.startsWith("cloud")) problems.push({ path: `${at}.driver`, message: "Docker Build Cloud is not supported here: use docker-container, docker, or a remote builder" });
  else if (driver !== "docker" && driver !== "docker-container") problems.push({ path: `${at}.driver`, message: `must be docker or docker-container (got ${driver})` });
  const arches = (b.arch === undefined ? [] : Array.isArray(b.arch) ? b.arch : [b.arch]).filter((a): a is string => a !== undefined);
  arches.forEach((a, i) => {
    if (!ARCHES.includes(a)) problems.push({ path: `${at}.arch${Array.isArray(b.arch) ? `.${i}` : ""}`, message: "must be amd64 or arm64" });
  });
  const remote = b.remote ? remoteOf(b.remote, `${at}.remote`, problems) : undefined;
  // Kamal: "Cannot disable local builds, no remote is set".
  if (b.local === false && !b.remote) problems.push({ path: `${at}.local`, message: "Cannot disable local builds, no remote is set" });
  const cached = cacheOf(b.cache, `${at}.cache`, problems);
  if (driver === "docker" && cached) problems.push({ path: `${at}.cache`, message: "the docker driver does not support caching (Kamal refuses it too): use the docker-container driver" });
  if (driver === "docker" && arches.length > 1 && !remote) problems.push({ path: `${at}.arch`, message: "the docker driver does not support multiple arches (Kamal refuses it too): use the docker-container driver" });
  return {
    ...common,
    platforms: arches.map((a) => `linux/${a}`),
    driver: driver === "docker" ? "docker" : "docker-container",
    ...(remote ? { remote } : {}),
    local: b.local !== false,
    ...(cached ? { cache: cached } : {}),
    ...(b.provenance !== undefined ? { provenance: b.provenance } : {}),
    ...(b.sbom !== undefined ? { sbom: b.sbom } : {}),
  };
}

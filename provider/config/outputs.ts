/**
 * What each resource records about what runs (its outputs), declared once: the resource
 * classes (provider/resources.ts) take their output properties from here, and the handlers
 * keep these fields through an update that changes nothing on the host.
 */
import { z } from "zod";

export const appOutputs = z.object({
  containerName: z.string(),
  containerId: z.string(),
  imageId: z.string(),
  imageDigest: z.string(),
  /** The version running on the host (refresh reads it back from the container). */
  runningVersion: z.string(),
  /** Docker's state of the container: running, exited… or missing. */
  status: z.string(),
  /** Whether this deploy pulled the image (false: it was on the host already). */
  pulled: z.boolean(),
});
export type AppOutputFields = z.output<typeof appOutputs>;

export const traefikOutputs = z.object({ containerId: z.string(), status: z.string(), restartedAt: z.string() });
export const envFileOutputs = z.object({ hash: z.string(), remotePath: z.string() });
export const accessoryOutputs = z.object({ containerId: z.string(), status: z.string(), dataDir: z.string() });
export const releaseOutputs = z.object({
  /** The version it last ran for. */
  ranVersion: z.string(),
  ranAt: z.string(),
  ranOn: z.string(),
});
export const hookOutputs = z.object({ ranAt: z.string() });
export const imageOutputs = z.object({
  /** "sha256:…" of what was pushed: hosts pull exactly this. */
  digest: z.string(),
  /** `<repository>@<digest>`. */
  ref: z.string(),
  platformsBuilt: z.array(z.string()),
  builtAt: z.string(),
});

/** The output fields of a resource, by name. */
export function outputNames<S extends z.ZodObject>(outputs: S): (keyof z.output<S> & string)[] {
  return Object.keys(outputs.shape) as (keyof z.output<S> & string)[];
}

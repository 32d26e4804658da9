/**
 * How a schema field is declared: its effect on change, whether it is a secret, and what
 * unsetting it means, attached to the field's own schema instance (provider/config/fields.ts
 * reads them for diff, validation and redaction).
 */
import { z } from "zod";

/**
 * What changing a field does to what runs on the host:
 * - replace: the resource moves (another host, another file path): delete, then create;
 * - swap: a new app container is started beside the old one, traffic moves, the old drains;
 * - reroute: the scope's route file is rewritten (the same containers serve, traffic keeps
 *   flowing); where the host's Traefik routes the scope by labels, a swap;
 * - restart: Traefik is restarted with the new settings;
 * - reboot: the accessory container is replaced, its data kept;
 * - rewrite: the file is written again;
 * - rerun: the release command runs again (in a one-off container of the image);
 * - build: the image is built and pushed again;
 * - record: nothing runs; the new value is only recorded in the state.
 */
export type Effect = "replace" | "swap" | "restart" | "reboot" | "reroute" | "rerun" | "rewrite" | "build" | "record";

export interface FieldMeta {
  /** What a change does; a field without one takes its parent's. */
  effect?: Effect;
  /** Every string under this field is a secret: wrapped by components, redacted from errors. */
  secret?: true;
  /** A value taken away is no change: the host keeps what it runs (an image digest no
   * longer pinned still names the image that runs). */
  unsetKeeps?: true;
}

/** Field metadata, keyed by the exact schema instance that sits in an object's shape. */
export const fieldMeta = z.registry<FieldMeta>();

/** Declares a field: a copy of `schema` that carries its metadata. */
export function field<T extends z.ZodType>(schema: T, meta: FieldMeta): T {
  const own = schema.clone() as T;
  fieldMeta.add(own, meta);
  return own;
}
export const swap = <T extends z.ZodType>(s: T) => field(s, { effect: "swap" });
export const record = <T extends z.ZodType>(s: T) => field(s, { effect: "record" });
export const replace = <T extends z.ZodType>(s: T) => field(s, { effect: "replace" });
export const restart = <T extends z.ZodType>(s: T) => field(s, { effect: "restart" });
export const reboot = <T extends z.ZodType>(s: T) => field(s, { effect: "reboot" });
export const reroute = <T extends z.ZodType>(s: T) => field(s, { effect: "reroute" });
export const rerun = <T extends z.ZodType>(s: T) => field(s, { effect: "rerun" });
export const secret = <T extends z.ZodType>(s: T) => field(s, { secret: true });

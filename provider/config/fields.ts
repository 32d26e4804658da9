/**
 * What the schemas' field declarations (schemas.ts) mean to the rest of the code: how a
 * change between two input sets is classified, which values are secrets, and how a stored
 * state of an earlier version is read. Pure functions over zod schemas and plain values.
 */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { ConfigError, problemsFrom } from "./errors";
import { fieldMeta, type Effect } from "./declare";

/** The value the engine puts where an input is not known yet (during preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

type Schema = z.core.$ZodType;
type Def = { type: string; innerType?: Schema; in?: Schema; getter?: () => Schema; shape?: Record<string, Schema>; element?: Schema; valueType?: Schema; options?: Schema[] };
const defOf = (s: Schema): Def => s._zod.def as Def;

/** The schema under optional/default/nullable/pipe/lazy wrappers. */
export function unwrap(s: Schema): Schema {
  for (;;) {
    const d = defOf(s);
    if (d.innerType && ["optional", "default", "prefault", "nullable", "readonly", "catch", "nonoptional"].includes(d.type)) s = d.innerType;
    else if (d.type === "pipe" && d.in) s = d.in;
    else if (d.type === "lazy" && d.getter) s = d.getter();
    else return s;
  }
}

/** The fields of an object schema (after unwrapping), or undefined for any other type. */
export function shapeOf(s: Schema): Record<string, Schema> | undefined {
  const d = defOf(unwrap(s));
  return d.type === "object" ? d.shape : undefined;
}

function hasNestedMeta(s: Schema): boolean {
  const shape = shapeOf(s);
  return !!shape && Object.values(shape).some((f) => fieldMeta.get(f)?.effect !== undefined || hasNestedMeta(f));
}

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

/** undefined, null, {} and [] all mean "not set". */
function unset(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v) && v.length === 0) return undefined;
  if (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0) return undefined;
  return v;
}

/** A field's value as the handler sees it: parsed (defaults applied, "1s" = 1), so that
 * writing out a default or another spelling of the same value is no change. */
function normalized(s: Schema, v: unknown): unknown {
  const r = z.safeParse(s, v);
  return unset(r.success ? r.data : v);
}

/** Every changed field (dotted path) with its declared effect. Unknown values (preview)
 * count as changed. */
export function changes(schema: Schema, olds: Record<string, unknown>, news: Record<string, unknown>, inherited: Effect = "record"): Map<string, Effect> {
  const out = new Map<string, Effect>();
  const shape = shapeOf(schema) ?? {};
  for (const [key, fs] of Object.entries(shape)) {
    const effect = fieldMeta.get(fs)?.effect ?? inherited;
    const o = olds?.[key];
    const n = news?.[key];
    if (fieldMeta.get(fs)?.unsetKeeps && unset(n) === undefined) continue;
    if (hasNestedMeta(fs)) {
      if (n === UNKNOWN) {
        for (const e of nestedEffects(fs, effect)) out.set(key, strongest(out.get(key), e));
        continue;
      }
      if ((unset(o) === undefined) !== (unset(n) === undefined)) {
        // Present on one side only (a health check added or removed): the field as a whole.
        out.set(key, effect);
        continue;
      }
      const asObj = (v: unknown) => (v && typeof v === "object" ? (v as Record<string, unknown>) : {});
      for (const [sub, e] of changes(fs, asObj(o), asObj(n), effect)) out.set(`${key}.${sub}`, e);
      continue;
    }
    if (containsUnknown(n) || !isDeepStrictEqual(normalized(fs, o), normalized(fs, n))) out.set(key, effect);
  }
  return out;
}

/** Every field a schema declares, dotted, with its effect (nested objects whose fields
 * declare their own effects are listed field by field). */
export function declaredEffects(schema: Schema, inherited: Effect = "record", prefix = ""): Map<string, Effect> {
  const out = new Map<string, Effect>();
  for (const [key, fs] of Object.entries(shapeOf(schema) ?? {})) {
    const effect = fieldMeta.get(fs)?.effect ?? inherited;
    if (hasNestedMeta(fs)) for (const [k, e] of declaredEffects(fs, effect, `${prefix}${key}.`)) out.set(k, e);
    else out.set(`${prefix}${key}`, effect);
  }
  return out;
}

function nestedEffects(s: Schema, inherited: Effect): Effect[] {
  return Object.values(shapeOf(s) ?? {}).flatMap((f) => {
    const e = fieldMeta.get(f)?.effect ?? inherited;
    return hasNestedMeta(f) ? nestedEffects(f, e) : [e];
  });
}

const ORDER: Effect[] = ["record", "rewrite", "rerun", "build", "reroute", "swap", "restart", "reboot", "replace"];
function strongest(a: Effect | undefined, b: Effect): Effect {
  return a === undefined || ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a;
}

/** The one effect a set of changes has (the strongest), or undefined for none. */
export function effectOf(changed: Map<string, Effect>): Effect | undefined {
  let e: Effect | undefined;
  for (const v of changed.values()) e = strongest(e, v);
  return e;
}

/** Every secret string in a value, as its schema declares them. */
export function secretsIn(schema: Schema, value: unknown, isSecret = false): string[] {
  if (value === undefined || value === null) return [];
  const secretHere = isSecret || fieldMeta.get(schema)?.secret === true;
  if (typeof value === "string") return secretHere && value.length > 0 ? [value] : [];
  const inner = unwrap(schema);
  const d = defOf(inner);
  if (Array.isArray(value)) return value.flatMap((v) => secretsIn(d.element ?? inner, v, secretHere));
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (d.type === "object" && d.shape) return entries.flatMap(([k, v]) => (d.shape![k] ? secretsIn(d.shape![k], v, secretHere) : []));
    if (d.type === "record") return entries.flatMap(([, v]) => secretsIn(d.valueType ?? inner, v, secretHere));
    return secretHere ? entries.flatMap(([, v]) => secretsIn(inner, v, true)) : [];
  }
  return [];
}

/** Top-level fields that hold a secret somewhere below: outputs Pulumi must encrypt. */
export function secretFields(schema: Schema): string[] {
  return Object.entries(shapeOf(schema) ?? {})
    .filter(([, f]) => holdsSecret(f))
    .map(([k]) => k);
}

/** Whether a field, or anything under it, is declared secret. */
export function holdsSecret(s: Schema): boolean {
  if (fieldMeta.get(s)?.secret) return true;
  const inner = unwrap(s);
  const d = defOf(inner);
  if (d.type === "object") return Object.values(d.shape ?? {}).some(holdsSecret);
  if (d.type === "array" && d.element) return holdsSecret(d.element);
  if (d.type === "record" && d.valueType) return holdsSecret(d.valueType);
  return false;
}

/** Only the keys the schema knows, recursively through objects and arrays of objects:
 * how state written by an earlier version (with fields since removed) is read. */
export function knownKeys(schema: Schema, value: unknown): unknown {
  const inner = unwrap(schema);
  const d = defOf(inner);
  if (Array.isArray(value) && d.type === "array" && d.element) return value.map((v) => knownKeys(d.element!, v));
  if (!value || typeof value !== "object" || Array.isArray(value) || d.type !== "object" || !d.shape) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([k]) => k in d.shape!)
      .map(([k, v]) => [k, knownKeys(d.shape![k], v)]),
  );
}

/**
 * Parses new inputs for an operation, reporting problems with their config paths.
 * `props` may carry the serialized provider and runtime outputs: only schema keys are read.
 */
export function parseInputs<S extends z.ZodType>(schema: S, props: Record<string, unknown>): z.output<S> {
  const result = schema.safeParse(pickShape(schema, props));
  if (!result.success) throw new ConfigError(problemsFrom(result.error.issues));
  return result.data;
}

/**
 * Parses inputs stored in the state by any earlier version: unknown fields are ignored,
 * and a field an earlier version accepted but this one rejects falls back to its default
 * (so refresh and destroy of an old stack always work).
 */
export function parseStored<S extends z.ZodType>(schema: S, props: Record<string, unknown>): z.output<S> {
  let value = knownKeys(schema, pickShape(schema, props)) as Record<string, unknown>;
  for (let i = 0; i < 20; i++) {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const bad = new Set(result.error.issues.map((issue) => String(issue.path[0] ?? "")));
    const droppable = [...bad].filter((k) => k in value);
    if (droppable.length === 0) throw new ConfigError(problemsFrom(result.error.issues));
    value = Object.fromEntries(Object.entries(value).filter(([k]) => !droppable.includes(k)));
  }
  throw new ConfigError([{ path: "(state)", message: "cannot be read" }]);
}

function pickShape(schema: Schema, props: Record<string, unknown>): Record<string, unknown> {
  const shape = shapeOf(schema) ?? {};
  return Object.fromEntries(Object.entries(props).filter(([k]) => k in shape));
}

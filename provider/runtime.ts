/**
 * The implementation the dynamic providers load at run time (see resources.ts): handlers by
 * resource kind. Loaded fresh by each provider process, so check/diff/read/delete always run
 * the installed code, never a copy frozen into the state.
 */
import * as accessory from "./handlers/accessory";
import * as app from "./handlers/app";
import * as envFile from "./handlers/envFile";
import * as traefik from "./handlers/traefik";

type Handlers = typeof app;

function asProvider(h: Pick<Handlers, "check" | "diff" | "create" | "read" | "update" | "remove">) {
  return { check: h.check, diff: h.diff, create: h.create, read: h.read, update: h.update, delete: h.remove };
}

export const providers = {
  app: asProvider(app),
  traefik: asProvider(traefik as unknown as Handlers),
  envFile: asProvider(envFile as unknown as Handlers),
  accessory: asProvider(accessory as unknown as Handlers),
};

export type Kind = keyof typeof providers;

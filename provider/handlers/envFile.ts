/**
 * An env file on one host: secret env for a role, an accessory or Traefik, written over
 * SFTP with mode 0600 (never through a command line). Its hash is an input of the
 * containers that read it, so a changed value redeploys them.
 */
import { fileHash } from "../commands/files";
import { createHash } from "node:crypto";
import { envFile, type EnvFileConfig } from "../config/schemas";
import { parseInputs, parseStored } from "../config/fields";
import * as docker from "../commands/docker";
import { absolute, connect, containsUnknown, diffResource, progress, remoteHome, Secrets, step, validate } from "./common";

import type { Inputs } from "./handlers";

/** `KEY=value` lines, keys sorted: what `docker run --env-file` reads. */
export function envFileContent(env: Record<string, string>): string {
  return Object.keys(env)
    .sort()
    .map((k) => `${k}=${env[k]}\n`)
    .join("");
}

export function contentHash(content: string): string {
  return createHash("sha256").update(content).digest("hex");
}

const pathOf = (key: string) => (key === "connection" ? "ssh" : key === "hostName" ? "hosts" : key === "env" ? "env.secret" : key);

export function check(_olds: Inputs, news: Inputs) {
  return { inputs: news, failures: validate(envFile, news, pathOf).failures };
}

/** A changed path moves the file; changed content, or a file refresh found changed or
 * missing on the host (drift), rewrites it. */
export function diff(_id: string, olds: Inputs, news: Inputs) {
  const base = diffResource(envFile, olds, news);
  const expected = containsUnknown(news.env) ? undefined : contentHash(envFileContent(news.env as Record<string, string>));
  return { ...base, changes: base.changes || expected !== olds.hash };
}

export async function create(news: Inputs) {
  const cfg = parseInputs(envFile, news);
  return { id: `${cfg.hostName}:${cfg.path}`, outs: { ...news, ...(await write(cfg)) } };
}

export async function update(_id: string, _olds: Inputs, news: Inputs) {
  return { outs: { ...news, ...(await write(parseInputs(envFile, news))) } };
}

export async function read(id: string, props: Inputs) {
  const cfg = parseStored(envFile, props);
  return new Secrets(envFile, cfg).guard(async () => {
    const conn = await connect(cfg.connection);
    const path = absolute(await remoteHome(conn), cfg.path);
    const r = await conn.run(fileHash(path));
    return { id, props: { ...props, hash: r.code === 0 ? r.stdout.split(" ")[0] : "missing" } };
  });
}

export async function remove(_id: string, props: Inputs) {
  const cfg = parseStored(envFile, props);
  await new Secrets(envFile, cfg).guard(() =>
    step(cfg.hostName, `removing ${cfg.path}`, async () => {
      const conn = await connect(cfg.connection);
      await conn.exec(docker.removePaths([absolute(await remoteHome(conn), cfg.path)]));
    }),
  );
}

async function write(cfg: EnvFileConfig) {
  return new Secrets(envFile, cfg).guard(() => step(cfg.hostName, `writing ${cfg.path}`, async () => {
    const conn = await connect(cfg.connection);
    const path = absolute(await remoteHome(conn), cfg.path);
    const content = envFileContent(cfg.env);
    await conn.exec(docker.makeDirectories([path.slice(0, path.lastIndexOf("/"))], "700"));
    await conn.upload(path, content, 0o600);
    progress(cfg.hostName, `wrote ${path} (mode 0600, ${Object.keys(cfg.env).length} variables)`);
    return { hash: contentHash(content), remotePath: path };
  }));
}

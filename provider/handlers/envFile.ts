/**
 * An env file on one host: secret env for a role, an accessory or Traefik, written over
 * SFTP with mode 0600 (never through a command line). Its hash is an input of the
 * containers that read it, so a changed value redeploys them.
 */
import { createHash } from "node:crypto";
import { envFile } from "../config/schemas";
import { shellJoin } from "../commands/shell";
import * as docker from "../commands/docker";
import { changedFields, connect, connectionSecrets, containsUnknown, hostChanged, parseInputs, progress, redacting, remoteHome, validate } from "./common";

type Inputs = Record<string, unknown>;

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

const pathOf = (configPath: string) => (key: string) =>
  key === "connection" ? "ssh" : key === "hostName" ? "hosts" : [configPath, key].filter(Boolean).join(".");

export function check(_olds: Inputs, news: Inputs) {
  return { inputs: news, failures: validate(envFile, news, pathOf(String(news.configPath ?? ""))).failures };
}

export function diff(_id: string, olds: Inputs, news: Inputs) {
  const moved = hostChanged(olds, news) || (!containsUnknown(news.path) && olds.path !== news.path);
  const expected = containsUnknown(news.env) ? undefined : contentHash(envFileContent(news.env as Record<string, string>));
  const changed = changedFields(olds, news, ["env", "connection", "hostName", "configPath"]).length > 0;
  return { changes: moved || changed || expected !== olds.hash, replaces: moved ? ["path"] : [] };
}

export async function create(news: Inputs) {
  const cfg = parseInputs(envFile, news);
  return { id: `${cfg.hostName}:${cfg.path}`, outs: { ...news, ...(await write(news)) } };
}

export async function update(_id: string, _olds: Inputs, news: Inputs) {
  return { outs: { ...news, ...(await write(news)) } };
}

export async function read(id: string, props: Inputs) {
  const cfg = parseInputs(envFile, props, RUNTIME);
  return redacting(secretsOf(cfg), async () => {
    const conn = await connect(cfg.connection);
    const path = absolute(await remoteHome(conn), cfg.path);
    const r = await conn.run(shellJoin(["sha256sum", path]));
    return { id, props: { ...props, hash: r.code === 0 ? r.stdout.split(" ")[0] : "missing" } };
  });
}

export async function remove(_id: string, props: Inputs) {
  const cfg = parseInputs(envFile, props, RUNTIME);
  await redacting(secretsOf(cfg), async () => {
    const conn = await connect(cfg.connection);
    await conn.exec(docker.removePaths([absolute(await remoteHome(conn), cfg.path)]));
  });
}

const RUNTIME = ["hash", "remotePath"];

function secretsOf(cfg: { connection: Parameters<typeof connectionSecrets>[0]; env: Record<string, string> }) {
  return [...connectionSecrets(cfg.connection), ...Object.values(cfg.env)];
}

function absolute(home: string, path: string): string {
  return path.startsWith("/") ? path : `${home}/${path}`;
}

async function write(inputs: Inputs) {
  const cfg = parseInputs(envFile, inputs);
  return redacting(secretsOf(cfg), async () => {
    const conn = await connect(cfg.connection);
    const path = absolute(await remoteHome(conn), cfg.path);
    const content = envFileContent(cfg.env);
    await conn.exec(docker.makeDirectories([path.slice(0, path.lastIndexOf("/"))], "700"));
    await conn.upload(path, content, 0o600);
    progress(cfg.hostName, `wrote ${path} (mode 0600, ${Object.keys(cfg.env).length} variables)`);
    return { hash: contentHash(content), remotePath: path };
  });
}

/**
 * `pulumi-kamal state move --to URL`: a project's stacks moved to another backend (from the
 * file backend `init` makes to an object store a team shares), with nothing redeployed.
 *
 * Between DIY backends this command can read and write (file://, s3://), each stack's
 * objects are copied as they are: its checkpoint, every update's history and the backups, so
 * `pulumi stack history` lists every deploy there and the secrets stay encrypted as they
 * were (the same passphrase or key opens them). To other backends (gs://, azblob://, Pulumi
 * Cloud) a stack moves by `pulumi stack export` and `import`: its resources and outputs, not
 * its history (said). The old backend keeps its copy; Pulumi.yaml then names the new one.
 */
import { readFileSync, writeFileSync } from "node:fs";
import YAML from "yaml";
import { backendName, parseBackend, type Backend } from "./backend";
import { blobStore, type BlobStore } from "./blobStore";
import { firstError, projectOf, pulumi, selectedStack, type Project } from "./pulumi";
import { UsageError } from "./usage";

export interface MoveOptions {
  dir: string;
  to: string;
  /** One stack (default: every stack of the project in the current backend). */
  stack?: string;
  write: (line: string) => void;
}

export interface Moved {
  stack: string;
  /** Updates in its history, in the new backend. */
  updates: number;
  withHistory: boolean;
}

/** The stacks of the project in a backend, by name. */
async function stacksIn(dir: string, url: string): Promise<string[]> {
  const r = await pulumi(dir, ["stack", "ls", "--json"], { env: { PULUMI_BACKEND_URL: url } });
  if (r.code !== 0) throw new UsageError(`could not list the stacks in ${url.split("?")[0]}: ${firstError(r.stderr || r.stdout)}`);
  return (JSON.parse(r.stdout) as { name: string }[]).map((s) => s.name.split("/").pop()!);
}

async function historyCount(dir: string, url: string, stack: string): Promise<number> {
  const r = await pulumi(dir, ["stack", "history", "--json", "--stack", stack], { env: { PULUMI_BACKEND_URL: url } });
  if (r.code !== 0) throw new UsageError(`could not read the history of stack ${stack} in ${url.split("?")[0]}: ${firstError(r.stderr || r.stdout)}`);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

/** A stack's objects in a DIY backend (project layout), less its locks. */
function stackPrefixes(project: string, stack: string): string[] {
  return [`.pulumi/stacks/${project}/${stack}.json`, `.pulumi/history/${project}/${stack}/`, `.pulumi/backups/${project}/${stack}/`];
}

async function copyObjects(from: BlobStore, to: BlobStore, project: Project, stack: string): Promise<number> {
  const meta = await from.list(".pulumi/meta.yaml");
  if (!meta.length || !/version:\s*1\b/.test((await from.get(".pulumi/meta.yaml")).toString())) {
    throw new UsageError(`${from.name} keeps its stacks in Pulumi's legacy layout (no projects): move it with pulumi stack export/import, or upgrade it first (pulumi state upgrade)`);
  }
  if ((await from.list(`.pulumi/locks/${project.name}/${stack}/`)).length) {
    throw new UsageError(`stack ${stack} is locked in ${from.name}: a deploy of it is running (or was killed: pulumi-kamal unlock). Move it once no deploy runs`);
  }
  if (!(await to.list(".pulumi/meta.yaml")).length) await to.put(".pulumi/meta.yaml", await from.get(".pulumi/meta.yaml"));
  const keys = (await Promise.all(stackPrefixes(project.name, stack).map((p) => from.list(p)))).flat();
  // The checkpoint last: the stack appears in the new backend only once its history is there.
  const checkpoint = (k: string) => k.startsWith(".pulumi/stacks/");
  for (const k of [...keys.filter((k) => !checkpoint(k)), ...keys.filter(checkpoint)]) await to.put(k, await from.get(k));
  return keys.length;
}

async function exportImport(dir: string, from: Backend, to: Backend, stack: string, secretsProvider: string | undefined): Promise<void> {
  const exported = await pulumi(dir, ["stack", "export", "--show-secrets", "--stack", stack], { env: { PULUMI_BACKEND_URL: from.url } });
  if (exported.code !== 0) throw new UsageError(`could not export stack ${stack}: ${firstError(exported.stderr || exported.stdout)}`);
  const created = await pulumi(dir, ["stack", "init", stack, ...(secretsProvider ? ["--secrets-provider", secretsProvider] : [])], { env: { PULUMI_BACKEND_URL: to.url } });
  if (created.code !== 0) throw new UsageError(`could not create stack ${stack} in ${backendName(to)}: ${firstError(created.stderr || created.stdout)}`);
  // The deployment on the CLI's standard input: its secrets in plain text never touch a file.
  const imported = await pulumi(dir, ["stack", "import", "--stack", stack], { env: { PULUMI_BACKEND_URL: to.url }, input: exported.stdout });
  if (imported.code !== 0) throw new UsageError(`could not import stack ${stack} into ${backendName(to)}: ${firstError(imported.stderr || imported.stdout)}`);
}

/** Pulumi.yaml with its backend URL replaced, the rest of the file as it was. */
export function withBackend(text: string, url: string): string {
  const doc = YAML.parseDocument(text);
  doc.setIn(["backend", "url"], url);
  return doc.toString();
}

export async function moveState(o: MoveOptions): Promise<Moved[]> {
  const project = projectOf(o.dir);
  if (!project) throw new UsageError(`no Pulumi project in ${o.dir}: run this in the project's directory or give --cwd`);
  if (process.env.PULUMI_BACKEND_URL) throw new UsageError("PULUMI_BACKEND_URL is set: unset it, so that the move reads the backend Pulumi.yaml names and writes the new one there");
  if (!project.backendUrl) throw new UsageError(`${project.file} names no backend (backend.url): the stacks are where pulumi login points; move them with pulumi stack export/import`);
  const from = parseBackend(project.backendUrl, "Pulumi.yaml backend.url");
  const to = parseBackend(o.to, "--to");
  if (from.url === to.url) throw new UsageError(`the stacks are in ${backendName(to)} already`);
  const all = await stacksIn(o.dir, from.url);
  const stacks = o.stack ? [o.stack] : all;
  if (o.stack && !all.includes(o.stack)) throw new UsageError(`${backendName(from)} has no stack ${o.stack} (it has: ${all.join(", ") || "none"})`);
  if (!stacks.length) throw new UsageError(`${backendName(from)} has no stack of project ${project.name}: nothing to move`);
  const there = await stacksIn(o.dir, to.url);
  const clash = stacks.filter((s) => there.includes(s));
  if (clash.length) throw new UsageError(`${backendName(to)} has stack${clash.length > 1 ? "s" : ""} ${clash.join(", ")} of project ${project.name} already: nothing was moved`);

  const [src, dst] = await Promise.all([blobStore(from, o.dir), blobStore(to, o.dir)]);
  const moved: Moved[] = [];
  for (const stack of stacks) {
    const before = await historyCount(o.dir, from.url, stack);
    if (src && dst) {
      const n = await copyObjects(src, dst, project, stack);
      o.write(`Stack ${stack}: ${n} objects copied from ${src.name} to ${dst.name} (checkpoint, history, backups)`);
    } else {
      await exportImport(o.dir, from, to, stack, undefined);
      o.write(`Stack ${stack}: exported from ${backendName(from)} and imported into ${backendName(to)} (its resources and outputs; its ${before} updates' history stays in ${backendName(from)})`);
    }
    const after = await historyCount(o.dir, to.url, stack);
    if (src && dst && after !== before) throw new UsageError(`stack ${stack} has ${after} updates in ${backendName(to)} after the copy, ${before} in ${backendName(from)}: Pulumi.yaml is unchanged`);
    moved.push({ stack, updates: after, withHistory: !!(src && dst) });
  }
  const selected = selectedStack(project);
  writeFileSync(project.file, withBackend(readFileSync(project.file, "utf8"), to.url));
  // The stack selected before is selected in the new backend (commands need no --stack).
  const select = selected && stacks.includes(selected) ? selected : stacks.length === 1 ? stacks[0] : undefined;
  if (select) await pulumi(o.dir, ["stack", "select", select]);
  o.write(`Pulumi.yaml: backend ${backendName(to)}. ${backendName(from)} keeps its copy: remove it once every deployer uses the new backend (commit Pulumi.yaml).`);
  return moved;
}

/**
 * Passbolt through the go-passbolt CLI (`passbolt list resources … --json`), as Kamal's
 * `passbolt` adapter: no `--account` (`passbolt verify` checks the configured one); a name is
 * `[folder/…/]resource`, `--from` being folders in front of every name. The folders are looked
 * up level by level, then the resources, filtered by name and innermost folder; results are
 * keyed by resource name.
 */
import { parseJson, prefixed, Vault, VaultError, type FetchOptions } from "./adapter";
import { inspect, inspectList, splitPath } from "./rubyText";
import { shellescape, shellsplit } from "./shellwords";

interface Folder {
  id: string;
  name: string;
  folder_parent_id?: string | null;
}

interface Resource {
  name: string;
  password: string;
}

export class Passbolt extends Vault {
  override readonly requiresAccount = false;

  protected readonly installCheck = { argv: ["passbolt", "--version"], missing: "Passbolt CLI is not installed" };

  protected login(): undefined {
    if (!this.cli.run(["passbolt", "verify"]).ok) throw new VaultError("Failed to login to Passbolt");
    return undefined;
  }

  protected fetchSecrets(secrets: readonly string[], { from }: FetchOptions): Record<string, string> {
    const paths = prefixed(secrets, from);
    if (!paths.length) throw new VaultError("No secrets given to fetch");
    const names = paths.map((p) => splitPath(p).at(-1) ?? "");
    const folders = this.folders(paths);

    const conditions: string[] = [];
    for (const path of paths) {
      const parts = splitPath(path);
      const name = quoted(parts.at(-1) ?? "");
      if (parts.length > 1) {
        // The innermost folder of the path that was found.
        let folder: Folder | undefined;
        for (let depth = 1; depth < parts.length; depth++) {
          const wanted = parts.slice(0, depth).join("/");
          folder = folders.find((f) => folderPath(f, folders) === wanted) ?? folder;
        }
        if (folder) conditions.push(`(Name == ${name} && FolderParentID == ${quoted(String(folder.id))})`);
      } else {
        conditions.push(`Name == ${name}`);
      }
    }

    const filter = conditions.length ? filterArgs(conditions.join(" || ")) : [];
    const folderArgs = folders.flatMap((f) => ["--folder", String(f.id ?? "")]);
    const r = filter && this.cli.run(["passbolt", "list", "resources", ...filter, ...folderArgs, "--column", "name", "--column", "password", "--json"]);
    if (!r || !r.ok) throw new VaultError(`Could not read ${inspectList(paths)} from Passbolt`);
    const items = parseJson<Resource[]>(r.stdout, "Passbolt");

    const found = new Set(items.map((i) => i.name));
    const missing = names.filter((n) => !found.has(n));
    if (missing.length) throw new VaultError(`Could not find the following secrets in Passbolt: ${missing.join(", ")}`);
    return Object.fromEntries(items.map((i) => [i.name, i.password]));
  }

  /** The folders the names are in: the top-level ones by name, then each nested level by
   * name and parent. Fails naming the folder paths not found. */
  private folders(paths: readonly string[]): Folder[] {
    const folderPaths = uniqueBy(
      paths.filter((p) => p.includes("/")).map((p) => splitPath(p).slice(0, -1)),
      (parts) => JSON.stringify(parts),
    );
    if (!folderPaths.length) return [];

    const topNames = [...new Set(folderPaths.map((parts) => parts[0] ?? ""))];
    const filter = filterArgs(topNames.map((n) => `Name == ${quoted(n)}`).join(" || "));
    const r = filter && this.cli.run(["passbolt", "list", "folders", ...filter, "--json"]);
    if (!r || !r.ok) throw new VaultError("Could not read folders from Passbolt");
    const topFolders = parseJson<Folder[]>(r.stdout, "Passbolt");
    const all = [...topFolders];

    for (const parts of folderPaths) {
      if (parts.length <= 1) continue;
      let parent = topFolders.find((f) => f.name === parts[0]);
      if (!parent) continue;
      for (const name of parts.slice(1)) {
        const nestedFilter = filterArgs(`Name == ${quoted(name)} && FolderParentID == ${quoted(String(parent.id))}`);
        const nested = nestedFilter && this.cli.run(["passbolt", "list", "folders", ...nestedFilter, "--json"]);
        if (!nested || !nested.ok) continue;
        const children = parseJson<Folder[]>(nested.stdout, "Passbolt");
        if (!children.length) break;
        all.push(...children);
        parent = children[0];
      }
    }

    const found = new Set(all.map((f) => folderPath(f, all)));
    const missing = folderPaths.map((parts) => parts.join("/")).filter((p) => !found.has(p));
    if (missing.length) throw new VaultError(`Could not find the following folders in Passbolt: ${missing.join(", ")}`);
    return all;
  }
}

/** A folder's path ("parent/child"), up through the parents among `folders` (a cycle, which
 * Passbolt cannot have, stops after as many levels as there are folders). */
function folderPath(folder: Folder, folders: readonly Folder[]): string {
  const names = [folder.name ?? ""];
  for (let f = folder; f.folder_parent_id && names.length <= folders.length; ) {
    const parent = folders.find((p) => p.id === f.folder_parent_id);
    if (!parent) break;
    names.unshift(parent.name ?? "");
    f = parent;
  }
  return names.join("/");
}

/** A value in a filter expression, as Kamal writes it: shell-escaped, then Ruby-inspected. */
function quoted(value: string): string {
  return inspect(shellescape(value));
}

/** `--filter 'EXPR'` as the shell splits it; undefined when a quote in EXPR leaves it
 * unbalanced (the command then fails, as Kamal's would in the shell). */
function filterArgs(expression: string): string[] | undefined {
  try {
    return ["--filter", ...shellsplit(`'${expression}'`)];
  } catch {
    return undefined;
  }
}

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
}

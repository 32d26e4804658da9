/**
 * OpenSSH client config files, read as Kamal reads them through net-ssh (`ssh.config`:
 * true by default = ~/.ssh/config then /etc/ssh/ssh_config; false = none; a path or list of
 * paths). Only what changes where and how Kamal connects: a host alias's `HostName`, its
 * `IdentityFile`s and `ProxyJump` / `ProxyCommand`. `User` and `Port` never apply: Kamal
 * always passes its own (`ssh.user`, default root; `ssh.port`, default 22), which net-ssh puts
 * over the files'. Program-side: reads local files only.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface SshHostConfig {
  hostName?: string;
  /** Only for a jump host: Kamal's own user and port override these for the hosts themselves. */
  user?: string;
  port?: number;
  identityFiles: string[];
  proxyJump?: string;
  proxyCommand?: string;
}

interface Block {
  patterns: string[];
  /** Keyword (lower case) → values, in file order. */
  entries: [string, string][];
}

/** Glob match of one ssh_config pattern (`*`, `?`), case-insensitive as OpenSSH. */
function globMatch(pattern: string, host: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(host);
}

/** `Host` patterns: any plain one matches and no negated (`!`) one does. */
export function hostMatches(patterns: string[], host: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), host)) return false;
    } else if (globMatch(p, host)) matched = true;
  }
  return matched;
}

function words(value: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) out.push(m[1] ?? m[2]);
  return out;
}

/** Parses one file's text into blocks; `Include` lines are resolved by `include`. `Match`
 * blocks are skipped (their conditions are not evaluated here). */
export function parseSshConfig(text: string, include: (pattern: string) => string[] = () => []): Block[] {
  const blocks: Block[] = [{ patterns: ["*"], entries: [] }];
  let current: Block | undefined = blocks[0];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1].toLowerCase();
    const value = m[2].trim();
    if (key === "host") {
      current = { patterns: words(value), entries: [] };
      blocks.push(current);
    } else if (key === "match") {
      current = undefined;
    } else if (key === "include") {
      for (const p of words(value)) {
        for (const t of include(p)) {
          const inner = parseSshConfig(t, include);
          // An Include inside a Host block applies only under that block's patterns.
          const under = current?.patterns ?? ["!*"];
          for (const b of inner) blocks.push({ patterns: b.patterns.length === 1 && b.patterns[0] === "*" ? under : b.patterns, entries: b.entries });
        }
      }
    } else if (current) current.entries.push([key, value]);
  }
  return blocks;
}

/** The settings for `host`: the first value obtained for each keyword wins (IdentityFile
 * accumulates), as OpenSSH reads them. */
export function sshHostConfig(blocks: Block[], host: string, home = os.homedir()): SshHostConfig {
  const first = new Map<string, string>();
  const identityFiles: string[] = [];
  for (const b of blocks) {
    if (!hostMatches(b.patterns, host)) continue;
    for (const [key, value] of b.entries) {
      if (key === "identityfile") identityFiles.push(value);
      else if (!first.has(key)) first.set(key, value);
    }
  }
  const expand = (v: string) =>
    v
      .replace(/%%/g, "\0")
      .replace(/%h/g, host)
      .replace(/%d/g, home)
      .replace(/%u/g, os.userInfo().username)
      .replace(/^~(?=\/|$)/, home)
      .replace(/\0/g, "%");
  const hostName = first.get("hostname");
  const proxyJump = first.get("proxyjump");
  const proxyCommand = first.get("proxycommand");
  return {
    hostName: hostName ? expand(hostName) : undefined,
    user: first.get("user"),
    port: first.has("port") ? Number(first.get("port")) : undefined,
    identityFiles: identityFiles.map((f) => expand(words(f)[0] ?? f)),
    proxyJump: proxyJump && proxyJump.toLowerCase() !== "none" ? proxyJump : undefined,
    proxyCommand: proxyCommand && proxyCommand.toLowerCase() !== "none" ? proxyCommand : undefined,
  };
}

/** The files `ssh.config` names (Kamal/net-ssh: true or unset = the user's then the
 * system's; false = none), each with the directory its relative `Include`s start from. */
export function sshConfigFiles(setting: boolean | string | string[] | undefined, home = os.homedir()): { file: string; base: string }[] {
  if (setting === false) return [];
  if (setting === undefined || setting === true) {
    return [
      { file: path.join(home, ".ssh/config"), base: path.join(home, ".ssh") },
      { file: "/etc/ssh/ssh_config", base: "/etc/ssh" },
    ];
  }
  const expand = (f: string) => (f.startsWith("~/") ? path.join(home, f.slice(2)) : f);
  return (Array.isArray(setting) ? setting : [setting]).map((f) => ({ file: expand(f), base: path.join(home, ".ssh") }));
}

/** Reads the files (missing ones are skipped, as ssh does) into blocks. */
export function readSshConfig(files: { file: string; base: string }[], home = os.homedir()): Block[] {
  const blocks: Block[] = [];
  for (const { file, base } of files) {
    if (!existsSync(file)) continue;
    const include = (pattern: string): string[] => {
      const full = pattern.startsWith("~/") ? path.join(home, pattern.slice(2)) : path.isAbsolute(pattern) ? pattern : path.join(base, pattern);
      const dir = path.dirname(full);
      const name = path.basename(full);
      if (!existsSync(dir)) return [];
      const names = name.includes("*") || name.includes("?") ? readdirSync(dir).filter((n) => globMatch(name, n)).sort() : [name];
      return names.map((n) => path.join(dir, n)).filter((f) => existsSync(f)).map((f) => readFileSync(f, "utf8"));
    };
    blocks.push(...parseSshConfig(readFileSync(file, "utf8"), include));
  }
  return blocks;
}

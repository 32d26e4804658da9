/** The sandbox as tests see it: `npm run sandbox -- status --json`, and fault injection. */
import { Command } from "../provider/commands/command";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { SshTarget } from "../provider/ssh/target";
import { currentLane, inLane, physicalHost } from "./lane";

export const repoRoot = path.resolve(__dirname, "..");

export interface SandboxHost {
  name: string;
  address: string;
  port: number;
  user: string;
  deployUser: string;
  privateKeyPath: string;
  knownHostsPath: string;
  dockerHost: string;
  role: "apps" | "accessories" | "fresh";
}

export interface Sandbox {
  dir: string;
  hosts: SandboxHost[];
  registry: { address: string; username: string; password: string };
  /** Pebble, the ACME CA: its directory, the certificate its HTTPS uses, the URL of its
   * current root (which issued certificates chain to), and its DNS server's management API. */
  acme: { directory: string; caCertificatesPath: string; roots: string; dns: string };
  images: { traefik: string; traefikAlt: string; kamalProxy: string; app: { v1: string; v2: string; broken: string } };
  /** The deploying machine's Docker engine (image builds): its DOCKER_HOST. */
  deployer: { dockerHost: string };
  /** The S3-compatible object store (SeaweedFS, plain HTTP): shared Pulumi state. */
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
}

let cached: Sandbox | undefined;

/** The sandbox, as this process's test lane sees it (see lane.ts). */
export function sandbox(): Sandbox {
  cached ??= inLane(JSON.parse(execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "status", "--json"], { encoding: "utf8" })) as Sandbox);
  return cached;
}

export function host(name: string): SandboxHost {
  const h = sandbox().hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no sandbox host ${name}`);
  return h;
}

/** SSH settings for a sandbox host, with its host key checked against known_hosts. */
export function target(name: string, user?: string): SshTarget {
  const h = host(name);
  return {
    host: h.address,
    port: h.port,
    user: user ?? h.user,
    privateKey: readFileSync(h.privateKeyPath, "utf8"),
    knownHostsPath: h.knownHostsPath,
    connectTimeoutMs: 5000,
    dialAttempts: 1,
  };
}

export function fault(hostName: string, what: "ssh" | "net" | "docker" | "api", action: "stop" | "start"): void {
  execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "fault", physicalHost(hostName), what, action], {
    stdio: "inherit",
  });
}

/** Stops or starts the registry this lane pulls from. */
export function registryFault(action: "stop" | "start"): void {
  const port = currentLane()?.registryPort ?? 5000;
  execFileSync("bash", [path.join(repoRoot, "scripts/sandbox.sh"), "fault", port === 5000 ? "registry" : `registry${port - 4999}`, action], {
    stdio: "inherit",
  });
}

/** Makes the ACME CA's DNS answer `name` with `address` only (its records otherwise add up). */
export async function pointName(name: string, address: string): Promise<void> {
  const dns = sandbox().acme.dns;
  for (const [what, body] of [["clear-a", { host: name }], ["add-a", { host: name, addresses: [address] }]] as const) {
    const r = await fetch(`${dns}/${what}`, { method: "POST", body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`${dns}/${what}: HTTP ${r.status}`);
  }
}

/** A command of the test's own, run as written: never again after a drop, no wait for a
 * restarting engine (a test that stops dockerd sees the failure at once). */
export function onHost(text: string): Command {
  return Command.adHoc(text);
}

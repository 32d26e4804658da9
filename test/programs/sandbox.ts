/** What programs under test need from the sandbox: hosts, SSH settings, registry, images. */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "node:child_process";
import path from "node:path";
import type { SshArgs } from "../..";
import { inLane } from "../../testbed/lane";

const root = path.resolve(__dirname, "../..");
// As the test lane that runs this program sees it (testbed/lane.ts).
export const sandbox = inLane(JSON.parse(
  execFileSync("bash", [path.join(root, "scripts/sandbox.sh"), "status", "--json"], { encoding: "utf8" }),
)) as {
  hosts: { name: string; address: string; privateKeyPath: string; knownHostsPath: string }[];
  registry: { address: string; username: string; password: string };
  acme: { directory: string; caCertificatesPath: string; roots: string; dns: string };
  images: { traefik: string; traefikAlt: string; app: Record<"v1" | "v2" | "broken", string> };
};

export function host(name: string) {
  const h = sandbox.hosts.find((x) => x.name === name)!;
  return { name: h.name, address: h.address };
}

export function ssh(overrides: Partial<SshArgs> = {}): SshArgs {
  const h = sandbox.hosts[0];
  return {
    user: "root",
    privateKey: pulumi.secret(readFileSync(h.privateKeyPath, "utf8")),
    knownHostsPath: h.knownHostsPath,
    connectTimeout: 5,
    ...overrides,
  };
}

export const registry = pulumi.secret({
  server: sandbox.registry.address,
  username: sandbox.registry.username,
  password: sandbox.registry.password,
});

export const appImage = `${sandbox.registry.address}/kp/testapp`;

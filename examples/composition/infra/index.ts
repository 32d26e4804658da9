/**
 * The infrastructure stack: it owns the servers and the proxy on them. In real life it
 * creates VMs (aws.ec2.Instance, hcloud.Server, …) and exports their addresses and host
 * keys; here the sandbox's machines already exist, so it exports what it is configured with.
 *
 * Ownership across stacks: this stack owns Traefik on every web host (its image, ports,
 * HTTPS, its restarts); each app stack owns its Service (containers, route files, env) and
 * names its own host names, so any number of apps share one Traefik per host, and a deploy,
 * rollback or destroy of one never touches another's containers or routes. Deploy this
 * stack first, and destroy it last.
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../../..";

const config = new pulumi.Config();
export const webAddresses = config.requireObject<string[]>("webAddresses");
export const knownHosts = config.require("knownHosts");

const ssh: kamal.SshArgs = { privateKey: config.requireSecret("sshPrivateKey"), knownHosts };
const registry = {
  server: config.require("registryServer"),
  username: config.require("registryUsername"),
  password: config.requireSecret("registryPassword"),
};
new kamal.Traefik("traefik", {
  hosts: webAddresses.map((address, i) => ({ name: `web-${i + 1}`, address })),
  ssh,
  image: config.require("traefikImage"),
  registry,
});

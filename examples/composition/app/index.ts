/**
 * An app stack on hosts that another stack exports: the addresses are not known when this
 * program starts (they are Outputs), yet each host is its own resource with a stable name,
 * so preview shows per-host changes and a new server is just one more entry. The proxy on
 * those hosts belongs to the infrastructure stack; this stack only names the host name its
 * requests come by, so several app stacks share it.
 *
 *   pulumi config set infraStack organization/kamal-infra/prod
 *   pulumi config set service shop && pulumi config set routeHost shop.example.com
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../../..";

const config = new pulumi.Config();
const infra = new pulumi.StackReference(config.require("infraStack"));
const addresses = infra.requireOutput("webAddresses") as pulumi.Output<string[]>;
const hosts = [0, 1].map((i) => ({ name: `web-${i + 1}`, address: addresses.apply((a) => a[i]) }));

const ssh: kamal.SshArgs = {
  privateKey: config.requireSecret("sshPrivateKey"),
  knownHosts: infra.requireOutput("knownHosts") as pulumi.Output<string>,
};
const registry = {
  server: config.require("registryServer"),
  username: config.require("registryUsername"),
  password: config.requireSecret("registryPassword"),
};

const app = new kamal.Service(config.get("service") ?? "composed", {
  image: config.require("image"),
  version: config.require("version"),
  registry,
  ssh,
  proxy: { host: config.get("routeHost") ?? "composed.example.test" },
  roles: { web: { hosts } },
  healthcheck: { path: "/up", cmd: config.get("healthcheckCmd") },
});

export const urls = addresses.apply((a) => a.map((h) => `http://${h}/`));
export const containers = app.containers;

/**
 * Bring your config/deploy.yml: KamalApp reads it (with its destination file, if any) and
 * creates Traefik, the service's roles and the accessories. Secrets named in it
 * (env.secret, registry password) come from Pulumi config secrets or .kamal/secrets.
 *
 *   pulumi config set version <git sha or tag>
 *   pulumi config set --secret API_TOKEN …
 *   pulumi up
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";

const config = new pulumi.Config();

const app = new kamal.KamalApp("hello", {
  configFile: `${__dirname}/config/deploy.yml`,
  destination: config.get("destination"),
  version: config.require("version"),
  // deploy.yml names its Traefik image through ENV (ERB); config can override it.
  traefikImage: config.get("traefikImage"),
  ssh: {
    privateKey: config.requireSecret("sshPrivateKey"),
    knownHosts: config.require("knownHosts"),
  },
});

export const containers = app.service.containers;
export const warnings = app.config.warnings;

/**
 * A Kamal 2 config/deploy.yml with KamalApp: the app on the `kamal` network reaches its
 * accessory by container name; secrets come from Pulumi config or .kamal/secrets (whose
 * `$(…)` runs only for a secret without another value); ERB is rendered by Ruby.
 *
 *   pulumi config set version <git sha or tag>
 *   pulumi up
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";

const config = new pulumi.Config();

const app = new kamal.KamalApp("hello2", {
  configFile: `${__dirname}/config/deploy.yml`,
  destination: config.get("destination"),
  version: config.require("version"),
  // Kamal 2 runs kamal-proxy; Traefik stands in for it here.
  traefikImage: config.get("traefikImage"),
  ssh: {
    privateKey: config.requireSecret("sshPrivateKey"),
    knownHosts: config.require("knownHosts"),
  },
});

export const containers = app.service.containers;
export const warnings = app.config.warnings;
// What `kamal config` would print for the same file, beside what runs behind the proxy here.
export const kamalConfig = app.kamalConfig;

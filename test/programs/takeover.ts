/**
 * A KamalApp from the project's own config/deploy.yml (written by the test), as a Kamal user
 * points Pulumi at the deploy.yml their hosts already run. Config: version.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { sandbox } from "./sandbox";

const cfg = new pulumi.Config();
const h = sandbox.hosts[0];
const app = new kamal.KamalApp("takeover", {
  configFile: path.join(process.cwd(), "config/deploy.yml"),
  version: cfg.require("version"),
  traefikImage: sandbox.images.traefik,
  ssh: { privateKey: pulumi.secret(readFileSync(h.privateKeyPath, "utf8")), knownHostsPath: h.knownHostsPath },
  secrets: { KAMAL_REGISTRY_PASSWORD: pulumi.secret(sandbox.registry.password) },
});

export const containers = app.service.containers;

/**
 * One web app on one host, behind Traefik: the smallest Kamal-style deployment.
 *
 *   pulumi config set host 203.0.113.10
 *   pulumi config set knownHosts "$(ssh-keyscan 203.0.113.10)"   # verify it out of band!
 *   pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519
 *   pulumi config set image registry.example.com/hello
 *   pulumi config set version v1
 *   pulumi up
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";

const config = new pulumi.Config();
const host = config.require("host");

const ssh: kamal.SshArgs = {
  user: config.get("sshUser") ?? "root",
  privateKey: config.requireSecret("sshPrivateKey"),
  knownHosts: config.require("knownHosts"),
};
const registryServer = config.get("registryServer");
const registry = registryServer
  ? { server: registryServer, username: config.require("registryUsername"), password: config.requireSecret("registryPassword") }
  : undefined;

const traefik = new kamal.Traefik("traefik", {
  hosts: [host],
  ssh,
  image: config.get("traefikImage") ?? "traefik:v3.6",
  registry,
});

const app = new kamal.Service("hello", {
  image: config.require("image"),
  version: config.require("version"),
  registry,
  ssh,
  roles: { web: { hosts: [host] } },
  // The app answers /up when healthy; the sandbox's test app has no curl, so it probes itself.
  healthcheck: { path: "/up", cmd: config.get("healthcheckCmd") },
}, { dependsOn: [traefik] });

export const url = `http://${host}/`;
export const version = app.resources.web[host].runningVersion;
export const containers = app.containers;

/**
 * Traefik alone on app1, as the SSH user `user` (config), with `log.level` from config
 * `logLevel`: a change of it hands the port over (or, without iptables, restarts Traefik).
 */
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { host, registry, sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
new kamal.Traefik("edge", {
  hosts: [host("app1")],
  ssh: ssh({ user: cfg.require("user") }),
  image: sandbox.images.traefik,
  registry,
  args: { "log.level": cfg.get("logLevel") ?? "INFO" },
});

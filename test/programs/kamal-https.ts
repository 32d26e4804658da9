/**
 * A Kamal 2 deploy.yml with HTTPS, deployed by KamalApp: the web role on two hosts with a
 * certificate from secrets (certificate_pem/private_key_pem), an admin role on one host with
 * `ssl: true` (the ACME CA: the sandbox's Pebble by TLS-ALPN-01, from KamalApp's `acme`), error_pages_path's
 * 503.html as the maintenance page. The project directory holds config/deploy.yml, the
 * secrets files and public/503.html (written by the test).
 * Config: version, maintenance ("" | "on" | a message).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as kamal from "../..";
import { sandbox, ssh } from "./sandbox";

const cfg = new pulumi.Config();
const maintenance = cfg.get("maintenance");
const app = new kamal.KamalApp("tlsapp", {
  configFile: path.join(process.cwd(), "config/deploy.yml"),
  version: cfg.require("version"),
  traefikImage: sandbox.images.traefik,
  ssh: ssh(),
  // TLS-ALPN-01 here (the proxy test's Traefik uses HTTP-01).
  acme: { caServer: sandbox.acme.directory, caCertificates: readFileSync(sandbox.acme.caCertificatesPath, "utf8"), challenge: "tls-alpn" },
  maintenance: maintenance ? (maintenance === "on" ? true : { message: maintenance }) : false,
});

export const containers = app.service.containers;

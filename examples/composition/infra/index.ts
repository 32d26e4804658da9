/**
 * The infrastructure stack. In real life this creates VMs (aws.ec2.Instance,
 * hcloud.Server, …) and exports their addresses and host keys; here the sandbox's
 * machines already exist, so it exports what it is configured with.
 */
import * as pulumi from "@pulumi/pulumi";

const config = new pulumi.Config();
export const webAddresses = config.requireObject<string[]>("webAddresses");
export const knownHosts = config.require("knownHosts");

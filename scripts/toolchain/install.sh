#!/usr/bin/env bash
# Installs (or finds in the cache) every tool the project runs on: Node.js, the Pulumi CLI
# with its Node.js language host and dynamic-provider launcher, Traefik, Pebble (the
# sandbox's ACME CA), SeaweedFS (its S3 object store: shared state), the buildx plugin
# (image builds) and the AWS CLI with moto (vault secrets). Idempotent.
# Writes the environment to use them to $KP_CACHE/env.sh and prints its path.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
node_bin="$(bash "$(dirname "$0")/node.sh")"
export PATH="$node_bin:$PATH"
pulumi_bin="$(bash "$(dirname "$0")/pulumi.sh")"
bash "$(dirname "$0")/traefik.sh" >/dev/null
bash "$(dirname "$0")/pebble.sh" >/dev/null
bash "$(dirname "$0")/seaweedfs.sh" >/dev/null
bash "$(dirname "$0")/buildx.sh" >/dev/null
aws_bin="$(bash "$(dirname "$0")/aws.sh")"
mkdir -p "$KP_CACHE"
cat >"$KP_CACHE/env.sh" <<ENV
export PATH="$pulumi_bin:$node_bin:\$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_HOME="$KP_CACHE/pulumi-home"
# The AWS CLI and moto_server (the vault tests), kept off PATH: their virtualenv has its own python.
export KP_AWS_BIN="$aws_bin"
# Node keeps compiled bytecode here: the program and provider processes start faster.
export NODE_COMPILE_CACHE="$KP_CACHE/node-compile-cache"
ENV
echo "$KP_CACHE/env.sh"

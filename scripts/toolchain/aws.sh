#!/usr/bin/env bash
# Installs the AWS CLI and moto (whose moto_server speaks the AWS Secrets Manager API) from
# PyPI into a virtualenv at $KP_CACHE/aws/<versions>/, pinned. Idempotent. Prints the
# virtualenv's bin directory. The tests run `kamal secrets fetch --adapter
# aws_secrets_manager` through the real AWS CLI against a real Secrets Manager API.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=aws
dir="$KP_CACHE/aws/moto-$KP_MOTO_VERSION-awscli-$KP_AWSCLI_VERSION"
if [ ! -x "$dir/bin/moto_server" ] || [ ! -x "$dir/bin/aws" ]; then
  kp_log "installing moto $KP_MOTO_VERSION and awscli $KP_AWSCLI_VERSION from PyPI (first time only, ~1 min)"
  t0=$(date +%s)
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$KP_MOTO_VERSION" "awscli==$KP_AWSCLI_VERSION" >&2
  kp_log "installed in $(( $(date +%s) - t0 ))s"
fi
echo "$dir/bin"

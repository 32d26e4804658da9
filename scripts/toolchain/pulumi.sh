#!/usr/bin/env bash
# Installs the Pulumi CLI at exactly the version of @pulumi/pulumi in package-lock.json,
# with the Node.js language host and the dynamic-provider launcher, into
# $KP_CACHE/pulumi/<version>/bin. Idempotent: a finished build is reused.
# Prints the bin directory on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=pulumi

version="v$(kp_pulumi_version)"
bin="$KP_CACHE/pulumi/$version/bin"
mkdir -p "$bin"

# A pulumi of that version already on PATH is used as is.
if [ ! -x "$bin/pulumi" ] && command -v pulumi >/dev/null 2>&1; then
  if [ "$(pulumi version 2>/dev/null)" = "$version" ]; then
    ln -sf "$(command -v pulumi)" "$bin/pulumi"
    kp_log "using $(command -v pulumi) ($version)"
  fi
fi

ldflags_for() { echo "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$1"; }

if [ ! -x "$bin/pulumi" ]; then
  kp_log "building the Pulumi CLI $version from Go modules (first time only, ~5-20 min)"
  t0=$(date +%s)
  kp_go_build "$KP_CACHE/pulumi/$version/src-cli" github.com/pulumi/pulumi/pkg/v3 "$version" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$bin/pulumi" "$(ldflags_for "$version")" \
    "github.com/pulumi/pulumi/sdk/v3 $version"
  kp_log "built pulumi in $(( $(date +%s) - t0 ))s"
fi

if [ ! -x "$bin/pulumi-language-nodejs" ]; then
  kp_log "building the Node.js language host (sdk $KP_LANGHOST_SDK_VERSION)"
  kp_go_build "$KP_CACHE/pulumi/$version/src-langhost" github.com/pulumi/pulumi/sdk/v3 "$KP_LANGHOST_SDK_VERSION" \
    github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs "$bin/pulumi-language-nodejs" \
    "$(ldflags_for "$KP_LANGHOST_SDK_VERSION")"
fi

# The dynamic-provider launcher, as Pulumi ships it, but finding the @pulumi/pulumi that the
# program resolves (also from a node_modules above the project, as in this repository's
# examples) without starting an extra node.
cat >"$bin/pulumi-resource-pulumi-nodejs" <<'SH'
#!/bin/sh
d="$PWD"
while :; do
  p="$d/node_modules/@pulumi/pulumi/cmd/dynamic-provider"
  if [ -f "$p/index.js" ]; then exec node "$p" "$@"; fi
  [ "$d" = "/" ] && break
  d="$(dirname "$d")"
done
echo "pulumi-resource-pulumi-nodejs: no node_modules/@pulumi/pulumi above $PWD" >&2
exit 1
SH
chmod +x "$bin/pulumi-resource-pulumi-nodejs"

echo "$bin"

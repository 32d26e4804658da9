#!/usr/bin/env bash
# Builds Docker's buildx CLI plugin ($KP_BUILDX_VERSION, Go module github.com/docker/buildx)
# into $KP_CACHE/buildx/<version>/docker-buildx and installs it where every Docker client on
# the machine finds it (/usr/local/lib/docker/cli-plugins). Image builds use it as Kamal 2
# does (`docker buildx build`): Debian 12 has no buildx package and none can be downloaded
# here. Idempotent. Prints the plugin's path on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=buildx
out="$KP_CACHE/buildx/$KP_BUILDX_VERSION/docker-buildx"
if [ ! -x "$out" ]; then
  kp_log "building buildx $KP_BUILDX_VERSION from Go modules (first time only, ~3-6 min)"
  t0=$(date +%s)
  kp_go_build "$KP_CACHE/buildx/$KP_BUILDX_VERSION/src" github.com/docker/buildx "$KP_BUILDX_VERSION" \
    github.com/docker/buildx/cmd/buildx "$out" \
    "-X github.com/docker/buildx/version.Version=$KP_BUILDX_VERSION -X github.com/docker/buildx/version.Package=github.com/docker/buildx"
  kp_log "built buildx in $(( $(date +%s) - t0 ))s"
fi
plugins=/usr/local/lib/docker/cli-plugins
if [ -w /usr/local/lib ] || [ -w "$plugins" ]; then
  mkdir -p "$plugins"
  cmp -s "$out" "$plugins/docker-buildx" 2>/dev/null || install -m 0755 "$out" "$plugins/docker-buildx"
fi
echo "$out"

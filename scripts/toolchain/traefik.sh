#!/usr/bin/env bash
# Builds a static Traefik ($KP_TRAEFIK_VERSION) from Go modules into
# $KP_CACHE/traefik/<version>/traefik. Idempotent. Prints the binary's path on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=traefik
out="$KP_CACHE/traefik/$KP_TRAEFIK_VERSION/traefik"
if [ ! -x "$out" ]; then
  kp_log "building Traefik $KP_TRAEFIK_VERSION from Go modules (first time only, ~5-10 min)"
  t0=$(date +%s)
  kp_go_build "$KP_CACHE/traefik/$KP_TRAEFIK_VERSION/src" github.com/traefik/traefik/v3 "$KP_TRAEFIK_VERSION" \
    github.com/traefik/traefik/v3/cmd/traefik "$out" \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=${KP_TRAEFIK_VERSION#v}"
  kp_log "built traefik in $(( $(date +%s) - t0 ))s"
fi
echo "$out"

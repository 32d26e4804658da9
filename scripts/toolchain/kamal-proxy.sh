#!/usr/bin/env bash
# Builds a static kamal-proxy ($KP_KAMAL_PROXY_VERSION, the proxy Kamal 2 runs) from Go
# modules into $KP_CACHE/kamal-proxy/<version>/kamal-proxy. Idempotent. Prints its path.
# The sandbox serves it as basecamp/kamal-proxy:<version>, so that tests can leave a host
# exactly as Kamal 2 does before this provider takes it over.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=kamal-proxy
out="$KP_CACHE/kamal-proxy/$KP_KAMAL_PROXY_VERSION/kamal-proxy"
if [ ! -x "$out" ]; then
  kp_log "building kamal-proxy $KP_KAMAL_PROXY_VERSION from Go modules (first time only, ~1-2 min)"
  t0=$(date +%s)
  kp_go_build "$KP_CACHE/kamal-proxy/$KP_KAMAL_PROXY_VERSION/src" github.com/basecamp/kamal-proxy "$KP_KAMAL_PROXY_VERSION" \
    github.com/basecamp/kamal-proxy/cmd/kamal-proxy "$out" ""
  kp_log "built kamal-proxy in $(( $(date +%s) - t0 ))s"
fi
echo "$out"

#!/usr/bin/env bash
# Builds Pebble, Let's Encrypt's ACME test server, and its DNS/challenge test server
# ($KP_PEBBLE_VERSION, Go module github.com/letsencrypt/pebble/v2) into
# $KP_CACHE/pebble/<version>/. Idempotent. Prints the directory holding both binaries.
# The sandbox runs them so that HTTPS is tested against a real ACME CA.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=pebble
dir="$KP_CACHE/pebble/$KP_PEBBLE_VERSION"
for cmd in pebble pebble-challtestsrv; do
  if [ ! -x "$dir/$cmd" ]; then
    kp_log "building $cmd $KP_PEBBLE_VERSION from Go modules (first time only, ~1 min)"
    t0=$(date +%s)
    kp_go_build "$dir/src-$cmd" github.com/letsencrypt/pebble/v2 "$KP_PEBBLE_VERSION" \
      "github.com/letsencrypt/pebble/v2/cmd/$cmd" "$dir/$cmd" ""
    kp_log "built $cmd in $(( $(date +%s) - t0 ))s"
  fi
done
echo "$dir"

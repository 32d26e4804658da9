#!/usr/bin/env bash
# Builds SeaweedFS's `weed` ($KP_SEAWEEDFS_VERSION, Go module github.com/seaweedfs/seaweedfs,
# Apache-2.0) into $KP_CACHE/seaweedfs/<version>/. Idempotent. Prints the directory.
# The sandbox runs `weed server -s3`: an S3-compatible object store that holds Pulumi state
# the way a team keeps it (issue 27: shared state, two deployers, a store that goes away).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=seaweedfs
dir="$KP_CACHE/seaweedfs/$KP_SEAWEEDFS_VERSION"
if [ ! -x "$dir/weed" ]; then
  kp_log "building weed $KP_SEAWEEDFS_VERSION from Go modules (first time only, several minutes)"
  t0=$(date +%s)
  kp_go_build "$dir/src" github.com/seaweedfs/seaweedfs "$KP_SEAWEEDFS_VERSION" \
    github.com/seaweedfs/seaweedfs/weed "$dir/weed" ""
  rm -rf "$dir/src"
  kp_log "built weed in $(( $(date +%s) - t0 ))s"
fi
echo "$dir"

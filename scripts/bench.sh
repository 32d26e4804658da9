#!/usr/bin/env bash
# `npm run bench [-- --quick]`: sets up like the tests, then measures (see bench/run.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
source "$(bash scripts/setup.sh)"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-sandbox}"
export NODE_OPTIONS="--disable-warning=ExperimentalWarning"
exec npx --no-install vite-node bench/run.ts -- "$@"

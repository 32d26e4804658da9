#!/usr/bin/env bash
# `npm test`: brings up the toolchain and the sandbox (both idempotent), then runs every
# test, unit and integration, against the real hosts and the real Pulumi engine.
set -euo pipefail
cd "$(dirname "$0")/.."
source "$(bash scripts/toolchain/install.sh)"
bash scripts/sandbox.sh up
# Programs load the compiled provider (dist/), as an installed package would.
npm run build --silent
mkdir -p test/.work
report=test/.work/vitest-report.json
set +e
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
code=$?
set -e
# A plain closing line that any CI can read.
node -e 'const r=require(process.argv[1]);console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests+r.numTodoTests} skipped`)' "$PWD/$report" || true
exit $code

#!/usr/bin/env bash
# `npm test`: sets up the toolchain and the sandbox (idempotent), then runs every test,
# unit and integration, against the real hosts and the real Pulumi engine.
set -euo pipefail
cd "$(dirname "$0")/.."
source "$(bash scripts/setup.sh)"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-sandbox}"
# Types of everything (provider, components, tests, examples, bench) before any test runs.
npx tsc -p tsconfig.check.json
mkdir -p test/.work
report=test/.work/vitest-report.json
set +e
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
code=$?
set -e
# A plain closing line that any CI can read.
node -e 'const r=require(process.argv[1]);console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests+r.numTodoTests} skipped`)' "$PWD/$report" || true
exit $code

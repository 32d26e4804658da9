#!/usr/bin/env bash
# `npm test`: sets up the toolchain and the sandbox (idempotent), then runs every test,
# unit and integration, against the real hosts and the real Pulumi engine.
#
# The fault scenarios (mostly waiting out network cuts) and the proxy tests run in a second
# lane beside the rest: on app3 and app4 and the registry's second port (test/helpers/lane.ts),
# so that nothing they inject reaches another test, and the two lanes take about as long.
# With arguments (`npm test -- test/unit`), only vitest with those arguments runs, in the
# main lane.
set -euo pipefail
cd "$(dirname "$0")/.."
export KP_SANDBOX_HOSTS="${KP_SANDBOX_HOSTS:-4}"
source "$(bash scripts/setup.sh)"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-sandbox}"
# Types of everything (provider, components, tests, examples, bench) before any test runs.
npx tsc -p tsconfig.check.json
mkdir -p test/.work
report=test/.work/vitest-report.json
reports=("$report")
set +e
if [ $# -eq 0 ]; then
  lane_files=(test/integration/faults.test.ts test/integration/proxy.test.ts)
  lane_report=test/.work/vitest-report-lane2.json
  lane_log=test/.work/lane2.log
  reports+=("$lane_report")
  rm -f "$lane_report"
  KP_LANE=two npx vitest run "${lane_files[@]}" --reporter=default --reporter=json --outputFile="$lane_report" >"$lane_log" 2>&1 &
  lane=$!
  npx vitest run $(printf -- '--exclude %s ' "${lane_files[@]}") --reporter=default --reporter=json --outputFile="$report"
  code=$?
  wait "$lane"
  lane_code=$?
  echo
  echo "--- the second lane (${lane_files[*]}; app3, app4, registry port 5001): $lane_log ---"
  cat "$lane_log"
  [ "$code" -eq 0 ] && code=$lane_code
else
  npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
  code=$?
fi
set -e
# A plain closing line that any CI can read, over every lane.
node -e '
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    try {
      const r = require(f);
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
    } catch { console.log(`(no report: ${f})`); failed++; }
  }
  console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "${reports[@]/#/$PWD/}" || true
exit $code

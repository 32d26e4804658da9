#!/usr/bin/env bash
# `npm test`: sets up the toolchain and the sandbox (idempotent), then runs every test,
# unit and integration, against the real hosts and the real Pulumi engine.
#
# The fault scenarios (mostly waiting out network cuts) and the proxy tests run in a second
# lane beside the rest, on app3 and app4 and the registry's second port; the release-safety
# tests (mostly watch windows), the pulumi-kamal CLI, the takeovers and KamalApp over HTTPS in
# a third, on app5-app7 and its third port; image builds (the deploying machine's engine, a
# remote builder, the local registry), a team sharing one stack on the S3 server and an
# accessory behind the proxy in a fourth,
# on app8 and app9 and its fourth port
# (testbed/lane.ts): nothing one lane injects reaches another.
# With arguments (`npm test -- test/unit`), only vitest with those arguments runs, in the
# main lane.
set -euo pipefail
cd "$(dirname "$0")/.."
export KP_SANDBOX_HOSTS="${KP_SANDBOX_HOSTS:-9}"
source "$(bash scripts/setup.sh)"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-sandbox}"
# Types of everything (provider, components, tests, examples, bench) before any test runs.
npx tsc -p tsconfig.check.json
mkdir -p test/.work
report=test/.work/vitest-report.json
reports=("$report")
set +e
if [ $# -eq 0 ]; then
  # Lanes beside the main one: name, then its files.
  lanes=("two test/integration/faults.test.ts test/integration/proxy.test.ts" "three test/integration/release.test.ts test/integration/cli.test.ts test/integration/bootstrap.test.ts test/integration/takeover.test.ts test/integration/kamal-https.test.ts" "four test/integration/build.test.ts test/integration/team.test.ts test/integration/accessoryProxy.test.ts test/integration/takeoverHttps.test.ts")
  excluded=() pids=() logs=()
  for spec in "${lanes[@]}"; do
    read -r name files <<<"$spec"
    lane_report="test/.work/vitest-report-lane-$name.json" lane_log="test/.work/lane-$name.log"
    rm -f "$lane_report"
    reports+=("$lane_report") logs+=("$lane_log")
    for f in $files; do excluded+=(--exclude "$f"); done
    # shellcheck disable=SC2086
    KP_LANE=$name npx vitest run $files --reporter=default --reporter=json --outputFile="$lane_report" >"$lane_log" 2>&1 &
    pids+=($!)
  done
  npx vitest run "${excluded[@]}" --reporter=default --reporter=json --outputFile="$report"
  code=$?
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    lane_code=$?
    echo
    echo "--- lane ${lanes[$i]} (its own hosts and registry port, testbed/lane.ts): ${logs[$i]} ---"
    cat "${logs[$i]}"
    [ "$code" -eq 0 ] && code=$lane_code
  done
else
  npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
  code=$?
fi
set -e
# A plain closing line that any CI can read, over every lane; before it, the ten tests
# closest to their limit (vitest.config.ts's testTimeout, or a test's own, which it notes in
# its meta as limitMs), so that one creeping towards its limit shows long before it fails.
node -e '
  const limit = 300000;
  let passed = 0, failed = 0, skipped = 0;
  const times = [];
  for (const f of process.argv.slice(1)) {
    try {
      const r = require(f);
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
      for (const file of r.testResults) for (const t of file.assertionResults) {
        if (typeof t.duration === "number") times.push({ ms: t.duration, limit: (t.meta && t.meta.limitMs) || limit, name: `${file.name.replace(process.cwd() + "/", "")} > ${t.title}` });
      }
    } catch { console.log(`(no report: ${f})`); failed++; }
  }
  times.sort((a, b) => b.ms / b.limit - a.ms / a.limit);
  console.log("Slowest tests against their limit (time / limit):");
  for (const t of times.slice(0, 10)) console.log(`  ${(t.ms / 1000).toFixed(0).padStart(4)} s / ${t.limit / 1000} s (${Math.round((100 * t.ms) / t.limit)}%)  ${t.name}`);
  const over = times.filter((t) => t.ms > t.limit / 2);
  if (over.length) console.log(`${over.length} test(s) used more than half of their limit`);
  console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "${reports[@]/#/$PWD/}" || true
exit $code

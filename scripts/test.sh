#!/usr/bin/env bash
# The README's test command (`npm test`): installs and builds, then runs the unit tests and the integration
# tests against a real Kafka, schema registry and Redis. Where those come from: KAFKA_BROKERS /
# SCHEMA_REGISTRY_URL / REDIS_URL when all three are set, else Testcontainers when a Docker engine answers,
# else the local stack (deploy/local/stack.sh), which the run stops again if it started it.
# Extra arguments go to jest, e.g. `npm test -- services/ingress`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Node.js 22 or newer for everything below (npx, tsc, eslint, jest and its workers): the one on PATH, else the
# pinned Node 24 LTS, fetched once into the cache (scripts/node-runtime.sh).
source scripts/node-runtime.sh
bash scripts/setup.sh
# promtool checks the alert rules (deploy/prometheus); Debian's prometheus package ships it.
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null; then
  echo "[test] installing promtool (Debian package prometheus)" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
    echo "[test] could not install promtool (not root?); the Prometheus rule test will say how" >&2
fi
# Tests that kill Redis or run a Redis Cluster start redis-server processes of their own and join a cluster with
# redis-cli (Debian's redis-server package brings both), whatever Redis the run itself uses.
if ! { command -v redis-server >/dev/null && command -v redis-cli >/dev/null; } && command -v apt-get >/dev/null; then
  echo "[test] installing redis-server and redis-cli (Debian package redis-server)" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } ||
    echo "[test] could not install redis-server (not root?); the tests that start their own Redis will fail" >&2
fi
# The console's browser tests drive headless Chromium from Debian's chromium package with puppeteer-core
# (CHROMIUM_PATH names another executable; puppeteer's own browser download cannot be fetched here).
if [[ -z "${CHROMIUM_PATH:-}" ]] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  echo "[test] installing chromium (Debian package chromium) for the console's browser tests" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
    echo "[test] could not install chromium (not root?); the console's browser tests will say how" >&2
fi
echo "[test] type-checking tests and linting" >&2
npx --no-install tsc -p tsconfig.test.json
npx --no-install eslint packages services bench reliability test
mkdir -p .ampflow
results=.ampflow/jest-results.json
rm -f "$results"
status=0
npx --no-install jest --ci --maxWorkers=2 --json --outputFile="$results" "$@" || status=$?
# The bench's own logic (report arithmetic, the partition simulation): node's test runner, no I/O, a second.
if (($# == 0)); then
  echo "[test] bench logic (node --test bench/test)" >&2
  node --test --test-reporter=spec bench/test/*.test.js >.ampflow/bench-tests.log 2>&1 || { status=1; cat .ampflow/bench-tests.log; }
  tail -n 8 .ampflow/bench-tests.log | grep -E '^ℹ (pass|fail)' >&2 || true
fi

# One closing line that any CI can read, whatever it knows of jest.
if [[ -f "$results" ]]; then
  node -e '
    const r = require(process.argv[1]);
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`ampflow: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$PWD/$results"
fi
exit "$status"

#!/usr/bin/env bash
# Installs the npm dependencies (when missing or out of date) and builds every package and service to dist/.
# Used by both quick-start commands; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [[ "$node_major" -lt 20 ]]; then
  echo "ampflow needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[setup] installing npm dependencies (npm ci)" >&2
  # `npm ci` installs exactly the lockfile and never rewrites it, so a fresh clone stays clean. It refuses when
  # package.json and the lockfile disagree (a dependency was just added by hand): then `npm install` mends the
  # lockfile, and the change is there to commit.
  if ! npm ci --prefer-offline --no-audit --no-fund --loglevel=error; then
    echo "[setup] npm ci refused (package.json and package-lock.json disagree); running npm install" >&2
    npm install --prefer-offline --no-audit --no-fund --loglevel=error
  fi
fi

echo "[setup] building (tsc -b)" >&2
npx --no-install tsc -b

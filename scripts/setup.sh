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
  echo "[setup] installing npm dependencies" >&2
  # `npm install`, not `npm ci`: the lockfile pins every version, but the registry this project is built against
  # does not serve some other platforms' optional binaries (@swc/core-darwin-*, @turbo/windows-*), which
  # `npm ci` insists on finding in the lockfile.
  npm install --prefer-offline --no-audit --no-fund --loglevel=error
fi

echo "[setup] building (tsc -b)" >&2
npx --no-install tsc -b

#!/usr/bin/env bash
# Installs the npm dependencies (when missing or out of date) and builds every package and service to dist/.
# Used by both quick-start commands; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Node.js 22 or newer on PATH, else the pinned Node 24 LTS from the cache (fetched once).
source scripts/node-runtime.sh
# node_modules belongs to one Node ABI (native addons are compiled for it), recorded at install: a tree installed
# under another one (e.g. Node 20, before the move to 24) is installed again, as a fresh clone would be.
node_abi=$(node -p 'process.versions.modules')
abi_file=node_modules/.ampflow-node-abi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ||
  "$(cat "$abi_file" 2>/dev/null)" != "$node_abi" ]]; then
  echo "[setup] installing npm dependencies for Node $(node --version) (npm ci)" >&2
  # `npm ci` installs exactly the lockfile and never rewrites it, so a fresh clone stays clean. It refuses when
  # package.json and the lockfile disagree (a dependency was just added by hand): then, and only then, `npm
  # install` mends the lockfile, and the change is there to commit. Any other failure (network, registry, disk)
  # stops here: `npm install` would re-resolve and rewrite the lockfile instead of reporting it. npm 11 runs no
  # dependency's install scripts unless package.json allows them (allowScripts): ssh2's optional crypto binding
  # and cpu-features stay unbuilt, ssh2 uses JavaScript.
  ci_log=$(mktemp)
  ci_status=0
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error 2>"$ci_log" || ci_status=$?
  # npm's own wording for that one refusal (lib/commands/ci.js; its code, EUSAGE, covers other misuse too).
  out_of_sync=0
  grep -q 'can only install packages when your package.json and package-lock.json' "$ci_log" && out_of_sync=1
  if ((ci_status != 0 && out_of_sync)); then
    grep -E '^npm error (Missing|Invalid):' "$ci_log" >&2 || true
    rm -f "$ci_log"
    echo "[setup] npm ci refused: package.json and package-lock.json disagree; running npm install to update the lockfile" >&2
    npm install --prefer-offline --no-audit --no-fund --loglevel=error
  else
    cat "$ci_log" >&2
    rm -f "$ci_log"
    if ((ci_status != 0)); then
      echo "[setup] npm ci failed (exit $ci_status, npm's error above); package-lock.json is left as it is." \
        "Fix the cause (network, registry, proxy, disk) and run this again." >&2
      exit "$ci_status"
    fi
  fi
  echo "$node_abi" >"$abi_file"
fi

echo "[setup] building (tsc -b)" >&2
npx --no-install tsc -b
# The console's page: its script (with chart.js) bundled by esbuild into services/console/dist/public, under a
# second. (The setup script's own test runs it in a throw-away project without the console.)
bundle=services/console/scripts/bundle.mjs
if [[ -f "$bundle" ]]; then
  echo "[setup] bundling the console's page (esbuild)" >&2
  node "$bundle"
fi

#!/usr/bin/env bash
# Usage: baseline.sh <commit>   -> compiles services/session-aggregator/src of <commit> into perf/baseline/dist,
# which levers.js compares the current build with (same process, same Redis, same readings).
set -euo pipefail
commit=${1:?usage: baseline.sh <commit>}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
rm -rf "$here/baseline"
mkdir -p "$here/baseline"
git -C "$root" archive "$commit" services/session-aggregator/src | tar -x -C "$here/baseline" --strip-components=2
rm -f "$here"/baseline/src/*.test.ts
cat >"$here/baseline/tsconfig.json" <<'EOF'
{
  "extends": "../../../../tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist", "composite": false, "incremental": false, "declaration": false, "declarationMap": false, "types": ["node"] },
  "include": ["src"]
}
EOF
(cd "$root" && npx tsc -p "$here/baseline/tsconfig.json")
echo "baseline of $commit in $here/baseline/dist"

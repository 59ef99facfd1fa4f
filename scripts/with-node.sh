#!/usr/bin/env bash
# Runs a command on Node.js 22 or newer: the one on PATH, else the pinned Node 24 LTS (scripts/node-runtime.sh).
# The root package.json's tool scripts (demo, ops, bench, docs:topics) go through it, because `npm run` itself
# may be running on an older system Node and would start `node` from PATH:
#
#   bash scripts/with-node.sh [--build <project>]... <command> [args...]
#
# Each --build <project> is compiled first (`tsc -b <project>`); then the command replaces this shell, so its
# exit status and signals are the command's own.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/node-runtime.sh"

while [[ ${1:-} == --build ]]; do
  [[ -n ${2:-} ]] || { echo "with-node.sh: --build needs a project directory" >&2; exit 2; }
  npx --no-install tsc -b "$2"
  shift 2
done
(($#)) || { echo "usage: bash scripts/with-node.sh [--build <project>]... <command> [args...]" >&2; exit 2; }
exec "$@"

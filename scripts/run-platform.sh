#!/usr/bin/env bash
# The README's run command (`npm start`): builds, brings up the local infrastructure (Kafka, Apicurio Registry,
# Redis; deploy/local/stack.sh) and runs the five services (the pipeline's four and the console) in the foreground
# until Ctrl-C, restarting any that exits. Ctrl-C stops the services; the infrastructure stays up for the next
# start (`npm run stack -- down`).
#
# Secrets come from the environment. Any that is not set is generated once for this checkout into
# .ampflow/dev-secrets.env (git-ignored) so a fresh clone runs; the values are never printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
STATE=${AMPFLOW_STATE_DIR:-$ROOT/.ampflow}

# Node.js 22 or newer for the build, the supervisor and the services: the one on PATH, else the pinned Node 24
# LTS, fetched once into the cache (scripts/node-runtime.sh).
source scripts/node-runtime.sh
bash scripts/setup.sh
bash deploy/local/stack.sh up
eval "$(bash deploy/local/stack.sh env | sed 's/^/export /')"

mkdir -p "$STATE/logs"
secrets="$STATE/dev-secrets.env"
if [[ ! -f "$secrets" ]]; then
  umask 077
  {
    echo "SMARTCAR_MANAGEMENT_TOKEN=dev-$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
    echo "TELEMATICA_WEBHOOK_SECRET=whsec_$(head -c 24 /dev/urandom | base64)"
    echo "NOTIFIER_ADMIN_TOKEN=dev-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  } >"$secrets"
  echo "[run] generated development secrets in $secrets" >&2
fi
# Added to a file from before it existed (never replaced: it decrypts the endpoint secrets stored with it).
if ! grep -q '^NOTIFIER_SECRETS_KEY=' "$secrets"; then
  (umask 077 && echo "NOTIFIER_SECRETS_KEY=dev:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$secrets")
fi
# The console's key for session cookies and portal links (added to older files too; replacing it signs everyone out).
if ! grep -q '^CONSOLE_SESSION_KEY=' "$secrets"; then
  (umask 077 && echo "CONSOLE_SESSION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$secrets")
fi
while IFS='=' read -r name value; do
  [[ -n "$name" && -z "${!name:-}" ]] && export "$name=$value"
done <"$secrets"

# Local development: customer endpoints on this machine (http://127.0.0.1:...) may receive webhooks, so the demo
# and your own test receivers work. The notifier's own defaults refuse plain http and loopback/private
# addresses (SSRF guard); set these variables yourself to choose otherwise.
export NOTIFIER_ALLOW_HTTP=${NOTIFIER_ALLOW_HTTP:-true}
export NOTIFIER_ALLOWED_NETWORKS=${NOTIFIER_ALLOWED_NETWORKS-127.0.0.0/8,::1/128}
echo "[run] notifier: development endpoint policy: http allowed=$NOTIFIER_ALLOW_HTTP, private networks allowed: ${NOTIFIER_ALLOWED_NETWORKS:-none} (production defaults: https only, none)" >&2

# The supervisor (scripts/supervise.mjs) starts each service in its own session, waits for /readyz, restarts a
# service that exits (1 s doubling to 30 s, reset once it stayed up a minute) and stops them all on Ctrl-C.
# Every service runs with the node flags of deploy/node-flags (the young generation's size: docs/memory.md), as in
# the image and the benchmarks; AMPFLOW_NODE_FLAGS, when set, replaces them.
spec=$(node -e '
  const [state, ...entries] = process.argv.slice(1);
  const flags = (process.env.AMPFLOW_NODE_FLAGS ??
    require("node:fs").readFileSync("deploy/node-flags", "utf8").replace(/#.*/g, "")).split(/\s+/).filter(Boolean);
  const services = entries.map((entry) => {
    const [name, port] = entry.split(":");
    return {
      name,
      command: [process.execPath, ...flags, `services/${name}/dist/main.js`],
      log: `${state}/logs/${name}.log`,
      readyUrl: `http://127.0.0.1:${port}/readyz`,
    };
  });
  process.stderr.write(`[run] services run on Node ${process.version} (${process.execPath}) with ${flags.join(" ") || "no flags"}\n`);
  process.stdout.write(JSON.stringify({
    services,
    readyMessage: "console: http://127.0.0.1:8088 (sign in with NOTIFIER_ADMIN_TOKEN from .ampflow/dev-secrets.env); webhooks: POST http://127.0.0.1:8080/webhooks/smartcar and /webhooks/telematica; notifier admin API: http://127.0.0.1:8090/v1 (Bearer NOTIFIER_ADMIN_TOKEN from .ampflow/dev-secrets.env); npm run demo; Ctrl-C to stop",
    stoppedMessage: "services stopped; infrastructure still up (npm run stack -- down to stop it)",
  }));
' "$STATE" ingress:8080 normalizer:9102 session-aggregator:9103 notifier:8090 console:8088)
exec node scripts/supervise.mjs "$spec"

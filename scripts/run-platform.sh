#!/usr/bin/env bash
# The README's run command (`npm start`): builds, brings up the local infrastructure (Kafka, Apicurio Registry,
# Redis; deploy/local/stack.sh) and runs the four services in the foreground until Ctrl-C.
# Ctrl-C stops the services; the infrastructure stays up for the next start (`npm run stack -- down` stops it).
#
# Secrets come from the environment. Any that is not set is generated once for this checkout into
# .ampflow/dev-secrets.env (git-ignored) so a fresh clone runs; the values are never printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
STATE=${AMPFLOW_STATE_DIR:-$ROOT/.ampflow}

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
    echo "NOTIFIER_ADMIN_TOKEN=dev-$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  } >"$secrets"
  echo "[run] generated development secrets in $secrets" >&2
fi
while IFS='=' read -r name value; do
  [[ -n "$name" && -z "${!name:-}" ]] && export "$name=$value"
done <"$secrets"

declare -A ports=([ingress]=8080 [normalizer]=9102 [session-aggregator]=9103 [notifier]=8090)
pids=()
stop_services() {
  trap "" INT TERM  # npm forwards a second SIGINT; finish stopping regardless
  echo "[run] stopping services" >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  echo "[run] services stopped; infrastructure still up (npm run stack -- down to stop it)" >&2
}
trap 'stop_services; exit 0' INT TERM

# Each service in its own session, so Ctrl-C reaches only this script, which then stops them with one SIGTERM.
for service in ingress normalizer session-aggregator notifier; do
  setsid node "services/$service/dist/main.js" >>"$STATE/logs/$service.log" 2>&1 &
  pids+=($!)
done

for service in ingress normalizer session-aggregator notifier; do
  port=${ports[$service]}
  for _ in $(seq 1 120); do
    curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz" && break
    sleep 0.5
  done
  if curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz"; then
    printf '[run] %-19s ready  http://127.0.0.1:%s  (/healthz /readyz /metrics; log %s)\n' "$service" "$port" "$STATE/logs/$service.log" >&2
  else
    echo "[run] $service did not become ready; see $STATE/logs/$service.log" >&2
    stop_services
    exit 1
  fi
done
echo "[run] webhooks: POST http://127.0.0.1:8080/webhooks/smartcar and /webhooks/telematica; Ctrl-C to stop" >&2

# Exit when any service exits on its own, stopping the others.
set +e
wait -n "${pids[@]}"
code=$?
echo "[run] a service exited with status $code" >&2
stop_services
exit "$code"

#!/usr/bin/env bash
# The monitoring stack on this machine, in one command and without Docker: cosmos-serve and a
# Prometheus (Debian's package) that scrapes it with deploy/prometheus/prometheus.yml and
# evaluates deploy/prometheus/alerts.yml, both on loopback. Ctrl-C stops both.
#   bash deploy/stack.sh                        # the tiny CPU model, as `cosmos-serve dev demo`
#   bash deploy/stack.sh --model /models/ft     # any `cosmos-serve serve` flags
#   bash deploy/stack.sh --scrape 127.0.0.1:8000   # Prometheus only, for a server already running
# Environment: COSMOS_STACK_PORT (8000), PROMETHEUS_PORT (9090), PROMETHEUS_SCRAPE_INTERVAL (the
# file's 15s), COSMOS_STACK_DIR (logs and Prometheus' data; default a new temporary directory).
# Grafana has no Debian package: import deploy/grafana/dashboards/cosmos-serve.json into yours,
# or run deploy/compose.yaml, which provisions it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PORT=${COSMOS_STACK_PORT:-8000}
PROM_PORT=${PROMETHEUS_PORT:-9090}
DIR=${COSMOS_STACK_DIR:-$(mktemp -d -t cosmos-stack.XXXXXX)}
mkdir -p "$DIR"

SCRAPE=""
if [ "${1:-}" = "--scrape" ]; then
  SCRAPE=${2:?--scrape needs HOST:PORT}
  shift 2
fi

[ -x .venv/bin/python ] || bash deploy/setup.sh
if ! command -v prometheus >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[stack] installing Debian's prometheus package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "[stack] prometheus is not installed: sudo apt-get install prometheus" >&2
    exit 1
  fi
fi

PIDS=()
stop() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "[stack] stopped; logs in $DIR"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "$SCRAPE" ]; then
  ARGS=("$@")
  if [ ${#ARGS[@]} -eq 0 ]; then
    MODEL=$(.venv/bin/cosmos-serve dev build-tiny-model .cache/tiny-model)
    ARGS=(--model "$MODEL" --served-model-name cosmos-reason1-tiny --enforce-eager
          --max-model-len 16384 --cpu-kv-cache-gib 1)
  fi
  PYTHONUNBUFFERED=1 .venv/bin/cosmos-serve serve --host 127.0.0.1 --port "$PORT" "${ARGS[@]}" \
    >"$DIR/server.log" 2>&1 &
  PIDS+=($!)
  SCRAPE="127.0.0.1:$PORT"
  echo "[stack] cosmos-serve starting on http://$SCRAPE (log: $DIR/server.log)"
fi

.venv/bin/python deploy/prometheus/local_config.py --target "$SCRAPE" \
  ${PROMETHEUS_SCRAPE_INTERVAL:+--scrape-interval "$PROMETHEUS_SCRAPE_INTERVAL"} >"$DIR/prometheus.yml"
promtool check config "$DIR/prometheus.yml" >/dev/null
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$DIR/prometheus.log" 2>&1 &
PIDS+=($!)
echo "[stack] prometheus on http://127.0.0.1:$PROM_PORT (alerts: /alerts; log: $DIR/prometheus.log)"

# Until Ctrl-C, or until either process ends (the stack is then stopped, with the status).
set +e
wait -n "${PIDS[@]}"
status=$?
echo "[stack] a process ended (status $status); stopping" >&2
exit "$status"

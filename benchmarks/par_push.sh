#!/usr/bin/env bash
# PAR push throughput: a real `grantline serve` on a fresh SQLite instance, loaded by wrk.
# Usage: benchmarks/par_push.sh [WORKERS] [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${1:-1}
DURATION=${2:-10}
CONNECTIONS=${3:-64}
ROUNDS=${4:-3}
PORT=${PORT:-8765}
BIN=.venv/bin
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
$BIN/grantline init --data-dir "$DATA" --issuer "http://127.0.0.1:$PORT" >/dev/null
CLIENT=$($BIN/grantline clients add --data-dir "$DATA" --name bench \
  --redirect-uri "https://bench.example/cb" --client-id bench --json)
export CLIENT_ID=bench REDIRECT_URI="https://bench.example/cb"
CLIENT_SECRET=$(printf '%s' "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
export CLIENT_SECRET

$BIN/grantline serve --data-dir "$DATA" --port "$PORT" --workers "$WORKERS" >"$DATA/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/.well-known/oauth-authorization-server" >/dev/null && break
  sleep 0.1
done

# Warm-up, then measured rounds.
wrk -t2 -c"$CONNECTIONS" -d2s -s benchmarks/par_push.lua "http://127.0.0.1:$PORT/par" >/dev/null
for round in $(seq "$ROUNDS"); do
  printf 'round %s workers=%s: ' "$round" "$WORKERS"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s benchmarks/par_push.lua \
    "http://127.0.0.1:$PORT/par" | tail -n 1
done

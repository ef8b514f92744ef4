#!/usr/bin/env bash
# PAR push throughput: a real `grantline serve` on a fresh instance, loaded by wrk.
# Usage: benchmarks/par_push.sh [WORKERS] [SECONDS] [CONNECTIONS] [ROUNDS]
# Environment: POSTGRES_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres runs it on a
# fresh PostgreSQL database instead of SQLite; SEED_ROWS=N first fills the growing tables
# (pushed requests, audit events, tokens) with N rows each.
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
PGDB=""
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$DATA"
  if [ -n "$PGDB" ]; then
    $BIN/python -c "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True); c.execute(f'DROP DATABASE IF EXISTS \"{sys.argv[2]}\" WITH (FORCE)')" "$POSTGRES_ADMIN_URL" "$PGDB" || echo "could not drop $PGDB" >&2
  fi
}
trap cleanup EXIT
if [ -n "${POSTGRES_ADMIN_URL:-}" ]; then
  PGDB="grantline_bench_$$"
  $BIN/python -c "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True); c.execute(f'CREATE DATABASE \"{sys.argv[2]}\"')" "$POSTGRES_ADMIN_URL" "$PGDB"
  export GRANTLINE_DATABASE_URL="${POSTGRES_ADMIN_URL%/*}/$PGDB"
fi
$BIN/grantline init --data-dir "$DATA" --issuer "http://127.0.0.1:$PORT" >/dev/null
if [ "${SEED_ROWS:-0}" -gt 0 ]; then
  $BIN/python benchmarks/seed_rows.py "${GRANTLINE_DATABASE_URL:-sqlite:///$DATA/grantline.db}" "$SEED_ROWS"
fi
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
  printf 'PAR push round %s workers=%s: ' "$round" "$WORKERS"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s benchmarks/par_push.lua \
    "http://127.0.0.1:$PORT/par" | tail -n 1
done

# Token endpoint: refresh_token grants, each with a fresh token minted into the database.
if [ "${TOKENS:-1}" != 0 ]; then
  export TOKENS_FILE="$DATA/refresh-tokens.txt" WRK_THREADS=2
  $BIN/python benchmarks/mint_refresh_tokens.py "$DATA" "${TOKEN_COUNT:-60000}" >"$TOKENS_FILE"
  for round in $(seq "$ROUNDS"); do
    printf 'token refresh round %s workers=%s: ' "$round" "$WORKERS"
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s benchmarks/token_refresh.lua \
      "http://127.0.0.1:$PORT/token" | tail -n 1
    # Each round gets fresh tokens: the ones sent are spent.
    $BIN/python benchmarks/mint_refresh_tokens.py "$DATA" "${TOKEN_COUNT:-60000}" >"$TOKENS_FILE"
  done
fi

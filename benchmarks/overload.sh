#!/usr/bin/env bash
# Overload: wrk far above capacity against `grantline serve --workers N`, while a second
# process polls /healthz every 100 ms. Reports the status mix (2xx/429/503/timeouts), healthz
# latency and success during the load, worker RSS before/during/after, and whether the server
# answers normally 5 s after the load stops.
# Usage: benchmarks/overload.sh [WORKERS] [SECONDS] [CONNECTIONS]
# Environment: MAX_CONCURRENT=N sets max_concurrent_requests (0 turns admission control off),
# ADMISSION_WAIT_MS=N admission_wait_ms;
# POSTGRES_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres runs it on a fresh PostgreSQL
# database instead of SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${1:-2}
DURATION=${2:-30}
CONNECTIONS=${3:-512}
PORT=${PORT:-8766}
BIN=.venv/bin
URL="http://127.0.0.1:$PORT"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

DATA=$(mktemp -d)
SERVER=""
PROBE=""
PGDB=""
cleanup() {
  for pid in $PROBE $SERVER; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$DATA"
  if [ -n "$PGDB" ]; then
    $BIN/python -c "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True); c.execute(f'DROP DATABASE IF EXISTS \"{sys.argv[2]}\" WITH (FORCE)')" "$POSTGRES_ADMIN_URL" "$PGDB" || echo "could not drop $PGDB" >&2
  fi
}
trap cleanup EXIT
if [ -n "${POSTGRES_ADMIN_URL:-}" ]; then
  PGDB="grantline_overload_$$"
  $BIN/python -c "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True); c.execute(f'CREATE DATABASE \"{sys.argv[2]}\"')" "$POSTGRES_ADMIN_URL" "$PGDB"
  export GRANTLINE_DATABASE_URL="${POSTGRES_ADMIN_URL%/*}/$PGDB"
fi

$BIN/grantline init --data-dir "$DATA" --issuer "$URL" >/dev/null
if [ -n "${MAX_CONCURRENT:-}" ]; then
  sed -i "s/^max_concurrent_requests = .*/max_concurrent_requests = $MAX_CONCURRENT/" "$DATA/grantline.toml"
fi
if [ -n "${ADMISSION_WAIT_MS:-}" ]; then
  sed -i "s/^admission_wait_ms = .*/admission_wait_ms = $ADMISSION_WAIT_MS/" "$DATA/grantline.toml"
fi
CLIENT=$($BIN/grantline clients add --data-dir "$DATA" --name bench \
  --redirect-uri "https://bench.example/cb" --client-id bench --json)
export CLIENT_ID=bench REDIRECT_URI="https://bench.example/cb"
CLIENT_SECRET=$(printf '%s' "$CLIENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
export CLIENT_SECRET

$BIN/grantline serve --data-dir "$DATA" --port "$PORT" --workers "$WORKERS" >"$DATA/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  curl -sf "$URL/readyz" >/dev/null && break
  sleep 0.1
done
sleep 1  # every worker up

rss() {  # the RSS of each worker process (not multiprocessing's helper), in MiB
  local pids
  pids=$(ps -o pid=,args= --ppid "$SERVER" | grep -v resource_tracker | awk '{print $1}' | paste -sd, -)
  ps -o rss= -p "${pids:-$SERVER}" | awk '{printf "%s%.0f", sep, $1 / 1024; sep = "/"} END {print " MiB"}'
}
push_status() {
  curl -s -o /dev/null -w '%{http_code}' -u "$CLIENT_ID:$CLIENT_SECRET" "$URL/par" \
    -d response_type=code --data-urlencode "redirect_uri=$REDIRECT_URI" -d scope=inbox.read \
    -d code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM -d code_challenge_method=S256
}

echo "database=$([ -n "$PGDB" ] && echo postgresql || echo sqlite) workers=$WORKERS" \
  "connections=$CONNECTIONS seconds=$DURATION" \
  "$(grep -E '^(max_concurrent_requests|admission_wait_ms)' "$DATA/grantline.toml" | tr '\n' ' ')"
echo "RSS before: $(rss)"

# The health probe: one request every 100 ms from 1 s before the load to 8 s after it, each
# with a 2 s bound; its samples are (seconds since the load started, status, latency in ms).
$BIN/python - "$URL/healthz" "$DURATION" "$DATA/probe.txt" <<'PY' &
import sys, time, httpx
url, duration, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
start = time.monotonic() + 1.0
samples = []
with httpx.Client(timeout=2.0) as http:
    while (now := time.monotonic()) < start + duration + 8.0:
        t0 = time.perf_counter()
        try:
            status = http.get(url).status_code
        except httpx.HTTPError:
            status = 0
        samples.append((now - start, status, (time.perf_counter() - t0) * 1000))
        time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
with open(out, "w") as fh:
    fh.writelines(f"{t:.3f} {s} {ms:.2f}\n" for t, s, ms in samples)
PY
PROBE=$!
sleep 1

( sleep $((DURATION / 2)); echo "RSS during: $(rss)" ) &
RSS_DURING=$!
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s -s benchmarks/overload.lua "$URL/par" | tail -n 1
wait "$RSS_DURING"

sleep 5
echo "5 s after: PAR push $(push_status), healthz $(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz"), RSS $(rss)"
wait "$PROBE"
PROBE=""
$BIN/python - "$DATA/probe.txt" "$DURATION" <<'PY'
import statistics, sys
path, duration = sys.argv[1], float(sys.argv[2])
rows = [line.split() for line in open(path)]
phases = {"during": (0.0, duration), "after": (duration + 5.0, duration + 8.0)}
for name, (lo, hi) in phases.items():
    picked = [(int(s), float(ms)) for t, s, ms in rows if lo <= float(t) < hi]
    ok = [ms for s, ms in picked if s == 200]
    lat = sorted(ms for _, ms in picked)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    print(f"healthz {name}: {len(ok)}/{len(picked)} ok, p50 {p(0.5):.1f} ms, "
          f"p99 {p(0.99):.1f} ms, max {max(lat, default=float('nan')):.1f} ms")
PY
curl -s "$URL/metrics" | awk '/^grantline_requests_total\{endpoint="admission"/ {n += $2} END {printf "refused by admission control (metrics): %d\n", n}'

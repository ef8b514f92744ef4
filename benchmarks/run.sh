#!/usr/bin/env bash
# The benchmark suite in one command: Grantline (SQLite with 1 and 2 workers, PostgreSQL with
# 2), node-oidc-provider (installed from npm on first run; skipped when npm is unreachable) and
# the minimal-handler ceiling, under wrk, in interleaved rounds. See benchmarks/README.md.
# Usage: benchmarks/run.sh [--quick] [--seconds S] [--rounds N] [--scenarios a,b] [--help]
#        benchmarks/run.sh --profile [--seconds S]   (py-spy profiles into benchmarks/profiles/)
#        benchmarks/run.sh --soak [REQUESTS]   (one worker's RSS over REQUESTS PAR pushes,
#                                               default 1,000,000; --help for its options)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "the virtual environment is missing: make test (or make run) first" >&2; exit 1; }
if [ "${1:-}" = "--profile" ]; then
  shift
  PYTHONPATH=benchmarks exec .venv/bin/python -m suite.profile "$@"
fi
if [ "${1:-}" = "--soak" ]; then
  shift
  PYTHONPATH=benchmarks exec .venv/bin/python -m suite.soak "$@"
fi
PYTHONPATH=benchmarks exec .venv/bin/python -m suite "$@"

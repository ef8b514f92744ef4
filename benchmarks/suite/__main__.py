"""``benchmarks/run.sh``: Grantline side by side with node-oidc-provider and the minimal-handler
ceiling, under wrk, in interleaved rounds; see benchmarks/README.md."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from suite import machine, node, report
from suite.process import REPO, stop_on_sigterm
from suite.runner import run_rounds
from suite.scenarios import SCENARIOS, Load
from suite.snapshot import frozen_grantline
from suite.targets import (
    CeilingTarget,
    GrantlineTarget,
    OidcProviderTarget,
    ResourceTarget,
    Target,
)
from suite.wrk import have_wrk

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "side-by-side"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.sh", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load before each run")
    parser.add_argument(
        "--quick", action="store_true", help="a development run: 2 s runs, 1 s warm-up, 1 round"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--flow-connections", type=int, default=32, help="browsers driving whole flows at once"
    )
    parser.add_argument("--no-oidc-provider", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("POSTGRES_ADMIN_URL", DEFAULT_POSTGRES),
        help="an account that may create and drop databases",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="results are written to OUTPUT.json and OUTPUT.md",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.rounds = 2.0, 1.0, 1
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario: {', '.join(sorted(unknown))}")
    return args


def _postgres_reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.Error as exc:
        print(f"PostgreSQL at {url.rsplit('@', 1)[-1]} unreachable ({exc}): skipping it.")
        return False


def _has_node_sqlite(node_bin: str) -> bool:
    """Whether ``node_bin`` has node:sqlite without a flag (Node 22.13 on), which the SQLite
    adapter in server.js is built on."""
    try:
        done = subprocess.run(
            [node_bin, "--no-warnings", "-e", "require('node:sqlite')"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        print(f"{node_bin} has no node:sqlite (Node 22.13+): skipping oidc-provider on SQLite.")
    return done.returncode == 0


def _targets(args: argparse.Namespace, node_bin: str | None) -> list[Target]:
    sqlite_1 = GrantlineTarget(1)
    targets: list[Target] = [sqlite_1, GrantlineTarget(2)]
    if not args.no_postgres and _postgres_reachable(args.postgres_admin_url):
        targets.append(GrantlineTarget(2, args.postgres_admin_url))
    if node_bin is not None:
        targets += [OidcProviderTarget(1, node_bin), OidcProviderTarget(2, node_bin)]
        if _has_node_sqlite(node_bin):
            targets += [
                OidcProviderTarget(1, node_bin, adapter="sqlite"),
                OidcProviderTarget(2, node_bin, adapter="sqlite"),
            ]
    targets += [CeilingTarget(1), ResourceTarget(1, sqlite_1), ResourceTarget(2, sqlite_1)]
    return targets


def main() -> int:
    args = _arguments()
    stop_on_sigterm()
    if not have_wrk():
        return 1
    node_bin = None if args.no_oidc_provider else node.ensure_oidc_provider()
    oidc_version = node.oidc_provider_version() if node_bin else None
    targets = _targets(args, node_bin)
    with frozen_grantline() as digest:
        about = machine.describe(node_bin, oidc_version) | {"grantline_source_digest": digest}
        return _run(args, targets, about)


def _run(args: argparse.Namespace, targets: list[Target], about: dict[str, Any]) -> int:
    scenarios = args.scenarios.split(",")
    load = Load(args.seconds, args.warmup, args.connections, args.flow_connections)
    print(
        f"{about['nproc']} CPUs ({about['cpu_model']}), {about['ram_gib']} GiB; "
        f"commit {about['commit']}"
        + (
            " with uncommitted changes under grantline/"
            if about["grantline_changes_uncommitted"]
            else ""
        )
        + f" (measured from a copy, digest {about['grantline_source_digest']})"
        + f"; {args.rounds} round(s) of {args.seconds:g} s per run"
    )
    started = time.time()
    measurements = run_rounds(targets, scenarios, load, args.rounds)
    rows = report.summarize(measurements, targets)
    print(report.text_table(rows))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "machine": about,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "load": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "connections": args.connections,
            "flow_connections": args.flow_connections,
        },
        "targets": {t.key: t.label for t in targets},
        "summary": [r.to_json() for r in rows],
        "measurements": [m.to_json() for m in measurements],
    }
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(report.markdown(rows) + "\n")
    print(f"\nresults: {args.output}.json and {args.output}.md")
    failed = sum(r.bad + r.socket_errors for r in rows)
    if failed:
        print(f"warning: {failed} operations failed; see 'failed' and the JSON for a sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())

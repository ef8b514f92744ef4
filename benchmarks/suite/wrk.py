"""Running wrk with one of the suite's Lua scripts and reading its one-line summary."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suite.process import REPO

__all__ = ["WrkResult", "have_wrk", "run_wrk", "wrk_path"]

#: A response slower than this counts as a wrk timeout (its default, 2 s, is too tight for a
#: loaded two-core machine under 64 connections).
TIMEOUT = "10s"


@dataclass(frozen=True)
class WrkResult:
    seconds: float
    requests: int
    #: Operations that succeeded: answers with the expected status (and body), or whole flows.
    ops: int
    bad: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    bad_sample: str | None
    extra: dict[str, Any]


def wrk_path() -> str | None:
    return shutil.which("wrk")


def have_wrk() -> bool:
    """Whether wrk is installed; says how to get it when it is not."""
    if wrk_path() is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return False
    return True


def run_wrk(
    script: str,
    url: str,
    *,
    seconds: float,
    threads: int,
    connections: int,
    env: Mapping[str, str],
) -> WrkResult:
    wrk = wrk_path()
    assert wrk is not None
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        TIMEOUT,
        "-s",
        f"benchmarks/lua/{script}",
        url,
    ]
    done = subprocess.run(
        args,
        cwd=REPO,
        env={**env, "WRK_THREADS": str(threads)},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    summary = next(
        (line[6:] for line in done.stdout.splitlines() if line.startswith("BENCH ")), None
    )
    if done.returncode != 0 or summary is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data: dict[str, Any] = json.loads(summary)
    known = {"seconds", "requests", "ops", "bad", "socket_errors", "p50_ms", "p99_ms"}
    return WrkResult(
        seconds=float(data["seconds"]),
        requests=int(data["requests"]),
        ops=int(data["ops"]),
        bad=int(data["bad"]),
        socket_errors=int(data["socket_errors"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        bad_sample=data.get("bad_sample"),
        extra={k: v for k, v in data.items() if k not in known | {"bad_sample"}},
    )

"""``benchmarks/run.sh --soak [REQUESTS]``: one Grantline worker's resident memory over many
PAR pushes (the project's target: under 120 MB per worker, and flat after a million requests).

A fresh instance, SQLite, one worker, configured as the suite's other Grantline targets are;
``par.lua`` (client_secret_basic, 64 connections) in consecutive wrk runs of 10 s until
REQUESTS pushes have succeeded. After each run: the pushes so far, the worker's RSS and the
run's throughput. The growth is read from the first sample at or past 100,000 pushes (the
ones before include warm-up allocation: imports done late, caches and pools filling) to the
last. Results go to benchmarks/results/soak.json and .md, rewritten after every run so that
an interrupted soak keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from suite import machine, proc
from suite.jws import pkce_pair
from suite.process import REPO, stop_on_sigterm
from suite.scenarios import Load, Prepared, build_job
from suite.snapshot import frozen_grantline
from suite.targets import GrantlineTarget
from suite.wrk import have_wrk, run_wrk

__all__ = ["Growth", "Sample", "busiest", "growth", "growth_line", "markdown", "text_table"]

DEFAULT_REQUESTS = 1_000_000
#: Samples before this many pushes include warm-up allocation; growth is read from after it.
SETTLED_AFTER = 100_000
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "soak"


@dataclass(frozen=True)
class Sample:
    """The state after one wrk run."""

    #: Successful pushes (201) since the server started, this run's included.
    pushes: int
    #: The worker process's resident memory at the end of the run.
    rss_mib: float
    #: This run's successful pushes per second.
    pushes_per_s: float
    p99_ms: float
    #: This run's answers other than 201, and socket errors.
    failed: int


@dataclass(frozen=True)
class Growth:
    from_pushes: int
    from_rss_mib: float
    to_pushes: int
    to_rss_mib: float
    peak_rss_mib: float
    #: Whether ``from`` is past SETTLED_AFTER pushes (else: the first sample, warm-up and all).
    settled: bool

    @property
    def mib(self) -> float:
        return self.to_rss_mib - self.from_rss_mib

    @property
    def percent(self) -> float:
        return 100 * self.mib / self.from_rss_mib if self.from_rss_mib else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"mib": self.mib, "percent": self.percent}


def growth(samples: Sequence[Sample], settled_after: int = SETTLED_AFTER) -> Growth | None:
    """RSS from the first sample at or past ``settled_after`` pushes to the last sample; from
    the first sample when no earlier sample than the last one is that far."""
    if not samples:
        return None
    last = samples[-1]
    settled = [s for s in samples[:-1] if s.pushes >= settled_after]
    start = settled[0] if settled else samples[0]
    return Growth(
        from_pushes=start.pushes,
        from_rss_mib=start.rss_mib,
        to_pushes=last.pushes,
        to_rss_mib=last.rss_mib,
        peak_rss_mib=max(s.rss_mib for s in samples),
        settled=bool(settled),
    )


def growth_line(g: Growth) -> str:
    line = (
        f"RSS growth {g.mib:+.1f} MiB ({g.percent:+.1f} %): {g.from_rss_mib:.1f} MiB after "
        f"{g.from_pushes:,} pushes, {g.to_rss_mib:.1f} MiB after {g.to_pushes:,}; "
        f"peak {g.peak_rss_mib:.1f} MiB"
    )
    if not g.settled:
        line += (
            f" (no sample at or past {SETTLED_AFTER:,} pushes before the last: read from the"
            " first sample, warm-up allocation included)"
        )
    return line


_HEADERS = ("pushes so far", "RSS MiB", "pushes/s", "p99 ms", "failed")
_WIDTHS = (13, 8, 9, 8, 7)


def _cells(sample: Sample) -> list[str]:
    return [
        f"{sample.pushes:,}",
        f"{sample.rss_mib:.1f}",
        f"{sample.pushes_per_s:,.0f}",
        f"{sample.p99_ms:.1f}",
        str(sample.failed),
    ]


def _line(cells: Sequence[str]) -> str:
    return "  ".join(c.rjust(w) for c, w in zip(cells, _WIDTHS, strict=True))


def text_table(samples: Sequence[Sample]) -> str:
    return "\n".join([_line(_HEADERS), *(_line(_cells(s)) for s in samples)])


def markdown(samples: Sequence[Sample]) -> str:
    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "| " + " | ".join("---:" for _ in _HEADERS) + " |",
        *("| " + " | ".join(_cells(s)) + " |" for s in samples),
    ]
    g = growth(samples)
    if g is not None:
        lines += ["", growth_line(g)]
    return "\n".join(lines)


def busiest(before: Mapping[int, float], after: Mapping[int, float]) -> int:
    """The process (of ``after``) that spent the most CPU between the two readings: the one
    that serves, whether uvicorn runs its one worker in the ``grantline serve`` process itself
    or in a child."""
    return max(after, key=lambda pid: after[pid] - before.get(pid, 0.0))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.sh --soak",
        description="One Grantline worker's RSS over many PAR pushes; see benchmarks/README.md.",
    )
    parser.add_argument(
        "requests",
        nargs="?",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"successful pushes to reach (default {DEFAULT_REQUESTS:,})",
    )
    parser.add_argument("--run-seconds", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="results are written to OUTPUT.json and OUTPUT.md",
    )
    args = parser.parse_args()
    if args.requests < 1 or args.run_seconds < 1:
        parser.error("REQUESTS and --run-seconds must be positive")
    return args


def main() -> int:
    args = _arguments()
    stop_on_sigterm()
    if not have_wrk():
        return 1
    with frozen_grantline() as digest:
        about = machine.describe(None, None) | {"grantline_source_digest": digest}
        return _soak(args, about)


def _write(output: Path, results: dict[str, Any], samples: Sequence[Sample]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown(samples) + "\n")


def _soak(args: argparse.Namespace, about: dict[str, Any]) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="grantline-soak-"))
    target = GrantlineTarget(1)
    samples: list[Sample] = []
    results: dict[str, Any] = {
        "machine": about,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load": {
            "requests": args.requests,
            "run_seconds": args.run_seconds,
            "connections": args.connections,
            "script": "par.lua (client_secret_basic)",
        },
        "target": target.label,
        "settled_after": SETTLED_AFTER,
        "complete": False,
    }
    print(
        f"{about['nproc']} CPUs, commit {about['commit']} (measured from a copy, digest "
        f"{about['grantline_source_digest']}); {target.label}; PAR push, "
        f"{args.connections} connections, {args.run_seconds} s runs until "
        f"{args.requests:,} pushes"
    )
    try:
        target.start(workdir)
        load = Load(args.run_seconds, 0, args.connections, 1)
        job = build_job("par_basic", target, Prepared(*pkce_pair()), load, 0, workdir / "-")
        worker: int | None = None
        pushes = 0
        while pushes < args.requests:
            seconds = args.run_seconds
            if samples and samples[-1].pushes_per_s > 0:
                # The last run only as long as the remainder needs (wrk takes whole seconds).
                left = (args.requests - pushes) / samples[-1].pushes_per_s
                seconds = max(1, min(seconds, math.ceil(left * 1.1)))
            cpu_before = proc.cpu_by_pid(proc.descendants(target.pid)) if worker is None else {}
            result = run_wrk(
                job.script,
                job.url,
                seconds=seconds,
                threads=job.threads,
                connections=job.connections,
                env=job.env,
            )
            if worker is None:
                worker = busiest(cpu_before, proc.cpu_by_pid(proc.descendants(target.pid)))
                where = f"a child of `grantline serve` (pid {target.pid})"
                if worker == target.pid:
                    where = "the `grantline serve` process itself"
                print(f"the worker: pid {worker}, {where}\n")
                print(text_table([]))
                results["worker"] = {"pid": worker, "is_serve_process": worker == target.pid}
            if worker not in proc.descendants(target.pid):
                log = target.server.log_tail() if target.server else ""
                raise RuntimeError(f"the worker (pid {worker}) is gone:\n{log}")
            pushes += result.ops
            sample = Sample(
                pushes=pushes,
                rss_mib=proc.sample_pids([worker]).rss_bytes / 2**20,
                pushes_per_s=result.ops / result.seconds if result.seconds else 0.0,
                p99_ms=result.p99_ms,
                failed=result.bad + result.socket_errors,
            )
            samples.append(sample)
            print(_line(_cells(sample)), flush=True)
            results["samples"] = [asdict(s) for s in samples]
            g = growth(samples)
            results["growth"] = g.to_json() if g else None
            if result.bad_sample and len(results.setdefault("bad_samples", [])) < 10:
                results["bad_samples"].append(result.bad_sample)
            _write(args.output, results, samples)
            if result.ops == 0:
                # Nothing would ever reach REQUESTS.
                raise RuntimeError(f"a run without one successful push: {result.bad_sample}")
        results["complete"] = True
        _write(args.output, results, samples)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the results hold the {len(samples)} sample(s) taken")
        status = 130
    else:
        status = 0
    finally:
        target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    g = growth(samples)
    if g is not None:
        print("\n" + growth_line(g))
    failed = sum(s.failed for s in samples)
    if failed:
        print(f"warning: {failed} pushes failed; see 'bad_samples' in the JSON")
    if samples:
        print(f"\nresults: {args.output}.json and {args.output}.md")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Interleaved rounds: every round starts every server fresh, then runs each scenario against
each server in turn (the order rotating from round to round), so that the machine's drift
falls on all of them alike and each ratio compares runs a few seconds apart."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suite import proc
from suite.jws import pkce_pair
from suite.scenarios import SCENARIOS, Load, Prepared, build_job, prepare
from suite.targets import Target
from suite.wrk import WrkResult, run_wrk

__all__ = ["Measurement", "run_rounds"]


@dataclass
class Measurement:
    round: int
    scenario: str
    target: str
    ops: int
    seconds: float
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    #: CPU of the server's process tree per successful operation.
    cpu_ms_per_op: float
    #: PostgreSQL backends' CPU per operation (None on SQLite and in memory).
    db_cpu_ms_per_op: float | None
    rss_mib: float
    processes: int
    requests: int
    bad: int
    socket_errors: int
    bad_sample: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _measure(
    round_no: int, scenario: str, target: Target, run: Any
) -> tuple[Measurement, WrkResult]:
    db_pids = target.database_pids()
    tree_before = proc.sample(target.pid)
    db_before = proc.cpu_by_pid(db_pids)
    result: WrkResult = run()
    tree_after = proc.sample(target.pid)
    db_after = proc.cpu_by_pid(db_pids)
    ops = max(result.ops, 1)
    db_cpu = sum(db_after[p] - db_before[p] for p in db_after if p in db_before)
    measurement = Measurement(
        round=round_no,
        scenario=scenario,
        target=target.key,
        ops=result.ops,
        seconds=result.seconds,
        ops_per_s=result.ops / result.seconds if result.seconds else 0.0,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_ms_per_op=(tree_after.cpu_seconds - tree_before.cpu_seconds) * 1000 / ops,
        db_cpu_ms_per_op=db_cpu * 1000 / ops if db_pids else None,
        rss_mib=tree_after.rss_bytes / 2**20,
        processes=tree_after.processes,
        requests=result.requests,
        bad=result.bad,
        socket_errors=result.socket_errors,
        bad_sample=result.bad_sample,
        extra=result.extra,
    )
    return measurement, result


def _start_all(targets: Sequence[Target], workdir: Path) -> list[Target]:
    started = []
    for target in targets:
        try:
            target.start(workdir)
        except Exception as exc:
            print(f"  {target.label}: could not start, left out of this round:\n    {exc}")
            target.stop()
            continue
        started.append(target)
    return started


def _rotated(items: Sequence[Target], by: int) -> list[Target]:
    if not items:
        return []
    by %= len(items)
    return [*items[by:], *items[:by]]


def run_rounds(
    targets: Sequence[Target], scenarios: Sequence[str], load: Load, rounds: int
) -> list[Measurement]:
    measurements: list[Measurement] = []
    # Rates seen so far, for sizing single-use fixtures: (scenario, target) -> ops/s.
    rates: dict[tuple[str, str], float] = {}
    for round_no in range(1, rounds + 1):
        workdir = Path(tempfile.mkdtemp(prefix=f"grantline-bench-r{round_no}-"))
        print(f"round {round_no}/{rounds}: starting {len(targets)} servers")
        live = _start_all(targets, workdir)
        try:
            prepared = {t.key: Prepared(*pkce_pair()) for t in live}
            for scenario in scenarios:
                print(f"  {SCENARIOS[scenario].title}")
                runnable = [t for t in live if scenario in t.scenarios]
                for target in _rotated(runnable, round_no - 1):
                    mine = prepared[target.key]
                    mine.rates = {s: r for (s, k), r in rates.items() if k == target.key}
                    try:
                        measurement = _run_one(round_no, scenario, target, mine, load, workdir)
                    except Exception as exc:
                        print(f"    {target.label}: failed: {exc}")
                        continue
                    measurements.append(measurement)
                    key = (scenario, target.key)
                    rates[key] = max(rates.get(key, 0.0), measurement.ops_per_s)
        finally:
            for target in live:
                target.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return measurements


def _run_one(
    round_no: int, scenario: str, target: Target, prepared: Prepared, load: Load, workdir: Path
) -> Measurement:
    fixtures = workdir / f"{target.key}.{scenario}"
    if load.warmup > 0:
        prepare(scenario, target, prepared, load, workdir)
        warm = build_job(scenario, target, prepared, load, load.warmup, fixtures)
        run_wrk(
            warm.script,
            warm.url,
            seconds=load.warmup,
            threads=warm.threads,
            connections=warm.connections,
            env=warm.env,
        )
        if target.rotates_sessions:
            prepared.cookies_file = None
    prepare(scenario, target, prepared, load, workdir)
    job = build_job(scenario, target, prepared, load, load.seconds, fixtures)
    measurement, _ = _measure(
        round_no,
        scenario,
        target,
        lambda: run_wrk(
            job.script,
            job.url,
            seconds=load.seconds,
            threads=job.threads,
            connections=job.connections,
            env=job.env,
        ),
    )
    flag = ""
    if measurement.bad or measurement.socket_errors:
        flag = f"  [{measurement.bad} bad, {measurement.socket_errors} socket errors"
        flag += f": {measurement.bad_sample}]" if measurement.bad_sample else "]"
    print(
        f"    {target.label:<48} {measurement.ops_per_s:>8.0f}/s  p50 {measurement.p50_ms:6.1f} ms"
        f"  p99 {measurement.p99_ms:7.1f} ms  {measurement.cpu_ms_per_op:5.2f} ms CPU/op"
        f"  {measurement.rss_mib:6.0f} MiB{flag}"
    )
    return measurement

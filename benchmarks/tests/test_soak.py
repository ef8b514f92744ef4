"""The soak's table, its growth figure (from after the warm-up to the last sample), the
worker it samples, and its command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from suite.process import REPO
from suite.soak import (
    DEFAULT_REQUESTS,
    Sample,
    _arguments,
    busiest,
    growth,
    growth_line,
    markdown,
    text_table,
)


def _s(pushes: int, rss_mib: float, rate: float = 2000.0, failed: int = 0) -> Sample:
    return Sample(pushes=pushes, rss_mib=rss_mib, pushes_per_s=rate, p99_ms=40.0, failed=failed)


def test_growth_is_read_from_the_first_sample_past_100k_to_the_last() -> None:
    samples = [_s(30_000, 70), _s(60_000, 88), _s(105_000, 95), _s(500_000, 99), _s(1_002_000, 96)]
    g = growth(samples)
    assert g is not None and g.settled
    assert (g.from_pushes, g.from_rss_mib) == (105_000, 95)
    assert (g.to_pushes, g.to_rss_mib) == (1_002_000, 96)
    assert g.peak_rss_mib == 99
    assert g.mib == 1 and g.percent == pytest.approx(100 / 95)
    line = growth_line(g)
    assert line.startswith("RSS growth +1.0 MiB (+1.1 %): 95.0 MiB after 105,000 pushes")
    assert "96.0 MiB after 1,002,000; peak 99.0 MiB" in line
    assert "warm-up" not in line
    assert g.to_json()["mib"] == 1


def test_a_short_soak_reads_growth_from_its_first_sample_and_says_so() -> None:
    g = growth([_s(20_000, 80), _s(40_000, 82), _s(61_000, 81.5)])
    assert g is not None and not g.settled
    assert (g.from_pushes, g.to_pushes, g.mib) == (20_000, 61_000, 1.5)
    assert "warm-up allocation included" in growth_line(g)
    # Only the last sample past 100k: nothing to measure from there, so from the first.
    g = growth([_s(50_000, 80), _s(120_000, 84)])
    assert g is not None and not g.settled and g.from_pushes == 50_000 and g.mib == 4
    g = growth([_s(30_000, 80)])
    assert g is not None and g.mib == 0
    assert growth([]) is None


def test_tables() -> None:
    samples = [_s(38_123, 81.3, 3812.4), _s(1_000_321, 83.5, 2950, failed=2)]
    text = text_table(samples).splitlines()
    assert text[0].split() == [
        "pushes",
        "so",
        "far",
        "RSS",
        "MiB",
        "pushes/s",
        "p99",
        "ms",
        "failed",
    ]
    assert text[1].split() == ["38,123", "81.3", "3,812", "40.0", "0"]
    assert text[2].split() == ["1,000,321", "83.5", "2,950", "40.0", "2"]
    md = markdown(samples).splitlines()
    assert md[0] == "| pushes so far | RSS MiB | pushes/s | p99 ms | failed |"
    assert md[3] == "| 1,000,321 | 83.5 | 2,950 | 40.0 | 2 |"
    assert md[-1].startswith("RSS growth +2.2 MiB")


def test_the_worker_is_the_process_that_spent_the_most_cpu() -> None:
    before = {100: 1.0, 101: 0.2}
    assert busiest(before, {100: 1.1, 101: 9.0, 102: 0.1}) == 101
    # One process: uvicorn serves in the `grantline serve` process itself.
    assert busiest({100: 1.0}, {100: 12.0}) == 100
    # A process that was not there before counts from zero.
    assert busiest(before, {100: 1.5, 103: 3.0}) == 103


def test_requests_default_to_a_million(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["run.sh --soak"])
    assert _arguments().requests == DEFAULT_REQUESTS == 1_000_000
    monkeypatch.setattr(sys, "argv", ["run.sh --soak", "60000", "--run-seconds", "5"])
    args = _arguments()
    assert (args.requests, args.run_seconds, args.connections) == (60_000, 5, 64)


def test_run_sh_hands_soak_to_the_soak_module() -> None:
    done = subprocess.run(
        [str(REPO / "benchmarks" / "run.sh"), "--soak", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "usage: benchmarks/run.sh --soak" in done.stdout
    assert "--run-seconds" in done.stdout

"""Medians over rounds, and ratios only between runs of the same round and process count."""

from __future__ import annotations

from suite.report import summarize
from suite.runner import Measurement
from suite.targets import CeilingTarget, GrantlineTarget, OidcProviderTarget


def _m(round_no: int, scenario: str, target: str, ops_per_s: float) -> Measurement:
    return Measurement(
        round=round_no,
        scenario=scenario,
        target=target,
        ops=int(ops_per_s * 10),
        seconds=10,
        ops_per_s=ops_per_s,
        p50_ms=1,
        p99_ms=2,
        cpu_ms_per_op=0.5,
        db_cpu_ms_per_op=None,
        rss_mib=80,
        processes=1,
        requests=int(ops_per_s * 10),
        bad=0,
        socket_errors=0,
        bad_sample=None,
    )


def test_ratios_are_medians_of_same_round_ratios() -> None:
    targets = [
        GrantlineTarget(1),
        GrantlineTarget(2),
        OidcProviderTarget(1, "node"),
        CeilingTarget(1),
    ]
    measurements = [
        _m(1, "par_basic", "grantline-sqlite-1", 1000),
        _m(1, "par_basic", "oidc-provider-1", 2000),
        _m(1, "par_basic", "ceiling-1", 4000),
        _m(2, "par_basic", "grantline-sqlite-1", 1500),
        _m(2, "par_basic", "oidc-provider-1", 1500),
        _m(2, "par_basic", "ceiling-1", 5000),
        _m(3, "par_basic", "grantline-sqlite-1", 900),
        _m(3, "par_basic", "oidc-provider-1", 1000),
        _m(3, "par_basic", "ceiling-1", 3000),
        _m(1, "par_basic", "grantline-sqlite-2", 1200),
    ]
    rows = {r.target: r for r in summarize(measurements, targets)}
    grantline = rows["grantline-sqlite-1"]
    assert grantline.ops_per_s == 1000
    assert grantline.vs_oidc_provider == 0.9  # median of 0.5, 1.0, 0.9
    assert grantline.vs_ceiling == 0.3  # median of 0.25, 0.3, 0.3
    # No 2-process oidc-provider ran and the ceiling has one worker: no ratio at all.
    assert rows["grantline-sqlite-2"].vs_oidc_provider is None
    assert rows["grantline-sqlite-2"].vs_ceiling is None
    assert rows["oidc-provider-1"].vs_oidc_provider is None

"""Medians over rounds, and ratios only between runs of the same round and process count,
against the oidc-provider store the project's targets are stated against."""

from __future__ import annotations

from suite.report import markdown, summarize, text_table
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


def _all_targets() -> list[GrantlineTarget | OidcProviderTarget]:
    return [
        GrantlineTarget(1),
        GrantlineTarget(2),
        GrantlineTarget(2, "postgresql://postgres@127.0.0.1:5432/postgres"),
        OidcProviderTarget(1, "node"),
        OidcProviderTarget(2, "node"),
        OidcProviderTarget(1, "node", adapter="sqlite"),
        OidcProviderTarget(2, "node", adapter="sqlite"),
    ]


def test_oidc_provider_partner_is_in_memory_at_one_process_and_sqlite_at_two() -> None:
    targets = _all_targets()
    assert [t.key for t in targets[3:]] == [
        "oidc-provider-1",
        "oidc-provider-2",
        "oidc-provider-sqlite-1",
        "oidc-provider-sqlite-2",
    ]
    rates = {
        "grantline-sqlite-1": 1000,
        "grantline-sqlite-2": 1200,
        "grantline-postgresql-2": 900,
        "oidc-provider-1": 4000,
        "oidc-provider-2": 6000,
        "oidc-provider-sqlite-1": 2000,
        "oidc-provider-sqlite-2": 3000,
    }
    measurements = [_m(1, "par_basic", key, rate) for key, rate in rates.items()]
    rows = {r.target: r for r in summarize(measurements, targets)}
    assert rows["grantline-sqlite-1"].oidc_provider_partner == "oidc-provider-1"
    assert rows["grantline-sqlite-1"].vs_oidc_provider == 0.25
    assert rows["grantline-sqlite-2"].oidc_provider_partner == "oidc-provider-sqlite-2"
    assert rows["grantline-sqlite-2"].vs_oidc_provider == 0.4
    assert rows["grantline-postgresql-2"].oidc_provider_partner == "oidc-provider-sqlite-2"
    assert rows["grantline-postgresql-2"].vs_oidc_provider == 0.3
    assert rows["oidc-provider-sqlite-2"].oidc_provider_partner is None
    # The JSON keeps every earlier field and names the partner besides.
    as_json = rows["grantline-sqlite-2"].to_json()
    assert as_json["vs_oidc_provider"] == 0.4
    assert as_json["oidc_provider_partner_label"] == "oidc-provider, SQLite, cluster of 2 workers"
    # And so do the tables.
    table = text_table(list(rows.values()))
    first = "÷ oidc-provider: Grantline, SQLite, 1 worker ÷ oidc-provider, in memory, 1 process"
    assert first in table
    assert "Grantline, PostgreSQL, 2 workers ÷ oidc-provider, SQLite, cluster of 2 workers" in table
    md = markdown(list(rows.values()))
    assert "- Grantline, SQLite, 2 workers ÷ oidc-provider, SQLite, cluster of 2 workers" in md


def test_without_a_sqlite_cluster_two_workers_fall_back_to_the_in_memory_one() -> None:
    measurements = [
        _m(1, "par_basic", "grantline-sqlite-2", 1200),
        _m(1, "par_basic", "oidc-provider-2", 6000),
        # The SQLite cluster ran in another round only: no ratio can be taken against it.
        _m(2, "par_basic", "oidc-provider-sqlite-2", 3000),
    ]
    rows = {r.target: r for r in summarize(measurements, _all_targets())}
    assert rows["grantline-sqlite-2"].oidc_provider_partner == "oidc-provider-2"
    assert rows["grantline-sqlite-2"].vs_oidc_provider == 0.2
    md = markdown(list(rows.values()))
    assert "- Grantline, SQLite, 2 workers ÷ oidc-provider, in memory, cluster of 2 workers" in md


def test_in_memory_cluster_has_no_flow_but_the_sqlite_one_does() -> None:
    memory, sqlite = OidcProviderTarget(2, "node"), OidcProviderTarget(2, "node", adapter="sqlite")
    assert "flow" not in memory.scenarios and "introspect" not in memory.scenarios
    assert {"par_basic", "par_jwt", "flow", "introspect"} <= sqlite.scenarios

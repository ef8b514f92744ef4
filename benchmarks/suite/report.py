"""Medians over rounds, ratios measured side by side, and the table (text and Markdown)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from suite.runner import Measurement
from suite.scenarios import SCENARIOS
from suite.targets import Target

__all__ = ["Row", "markdown", "summarize", "text_table"]


@dataclass(frozen=True)
class Row:
    scenario: str
    target: str
    label: str
    rounds: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_op: float
    db_cpu_ms_per_op: float | None
    rss_mib: float
    bad: int
    socket_errors: int
    #: Median over rounds of Grantline's ops/s divided by the partner's in the same round.
    vs_oidc_provider: float | None
    vs_ceiling: float | None
    #: The targets those ratios are against (key and label; None without a ratio).
    oidc_provider_partner: str | None = None
    oidc_provider_partner_label: str | None = None
    ceiling_partner: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ratio(mine: Sequence[Measurement], theirs: Sequence[Measurement]) -> float | None:
    """Median of per-round ratios: each compares two runs of the same round."""
    by_round = {m.round: m.ops_per_s for m in theirs if m.ops_per_s > 0}
    ratios = [m.ops_per_s / by_round[m.round] for m in mine if m.round in by_round]
    return statistics.median(ratios) if ratios else None


def _oidc_provider_stores(target: Target) -> tuple[str, ...]:
    """oidc-provider's stores (its targets' ``database``) that a Grantline row is compared
    with, in order of preference, always at the same number of processes. One process: the
    in-memory adapter, which the project's one-process target is stated against. More: the
    SQLite adapter the cluster's workers share, for Grantline on SQLite and on PostgreSQL
    alike (the two-process targets are stated against that figure); the in-memory cluster
    only when no SQLite one was measured."""
    if target.workers == 1:
        return ("memory", "SQLite")
    return ("SQLite", "memory")


def _partners(
    target: Target, scenario: str, targets: Sequence[Target], family: str
) -> list[Target]:
    """The ``family`` targets that ``target``'s row in ``scenario`` may be divided by, best
    first: the same number of processes only (a ratio across process counts says nothing);
    for oidc-provider, in the order of stores above. The first one measured in a round that
    ``target`` was measured in is the partner."""
    if target.family != "grantline":
        return []
    candidates = [
        other
        for other in targets
        if other.family == family
        and other.workers == target.workers
        and scenario in other.scenarios
    ]
    if family != "oidc-provider":
        return candidates
    stores = _oidc_provider_stores(target)
    return sorted(
        (other for other in candidates if other.database in stores),
        key=lambda other: stores.index(other.database),
    )


def summarize(measurements: Sequence[Measurement], targets: Sequence[Target]) -> list[Row]:
    rows = []
    for scenario in SCENARIOS:
        ran = [m for m in measurements if m.scenario == scenario]
        for target in targets:
            mine = [m for m in ran if m.target == target.key]
            if not mine:
                continue
            ratios: dict[str, float | None] = {}
            partners: dict[str, Target | None] = {}
            for family in ("oidc-provider", "ceiling"):
                ratios[family], partners[family] = None, None
                for partner in _partners(target, scenario, targets, family):
                    ratio = _ratio(mine, [m for m in ran if m.target == partner.key])
                    if ratio is not None:
                        ratios[family], partners[family] = ratio, partner
                        break
            oidc_partner, ceiling_partner = partners["oidc-provider"], partners["ceiling"]
            db = [m.db_cpu_ms_per_op for m in mine if m.db_cpu_ms_per_op is not None]
            rows.append(
                Row(
                    scenario=scenario,
                    target=target.key,
                    label=target.label,
                    rounds=len(mine),
                    ops_per_s=_median([m.ops_per_s for m in mine]),
                    p50_ms=_median([m.p50_ms for m in mine]),
                    p99_ms=_median([m.p99_ms for m in mine]),
                    cpu_ms_per_op=_median([m.cpu_ms_per_op for m in mine]),
                    db_cpu_ms_per_op=_median(db) if db else None,
                    rss_mib=_median([m.rss_mib for m in mine]),
                    bad=sum(m.bad for m in mine),
                    socket_errors=sum(m.socket_errors for m in mine),
                    vs_oidc_provider=ratios["oidc-provider"],
                    vs_ceiling=ratios["ceiling"],
                    oidc_provider_partner=oidc_partner.key if oidc_partner else None,
                    oidc_provider_partner_label=oidc_partner.label if oidc_partner else None,
                    ceiling_partner=ceiling_partner.key if ceiling_partner else None,
                )
            )
    return rows


_HEADERS = (
    "server",
    "ops/s",
    "p50 ms",
    "p99 ms",
    "CPU ms/op",
    "RSS MiB",
    "÷ oidc-provider",
    "÷ ceiling",
    "failed",
)


def _cells(row: Row) -> list[str]:
    cpu = f"{row.cpu_ms_per_op:.2f}"
    if row.db_cpu_ms_per_op is not None:
        cpu += f" +{row.db_cpu_ms_per_op:.2f} db"
    return [
        row.label,
        f"{row.ops_per_s:,.0f}",
        f"{row.p50_ms:.1f}",
        f"{row.p99_ms:.1f}",
        cpu,
        f"{row.rss_mib:,.0f}",
        f"{row.vs_oidc_provider:.2f}×" if row.vs_oidc_provider is not None else "",
        f"{row.vs_ceiling:.2f}×" if row.vs_ceiling is not None else "",
        str(row.bad + row.socket_errors),
    ]


def _grouped(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    groups: list[tuple[str, list[Row]]] = []
    for row in rows:
        if not groups or groups[-1][0] != row.scenario:
            groups.append((row.scenario, []))
        groups[-1][1].append(row)
    return groups


def _divided_by(row: Row) -> str | None:
    """What a row's "÷ oidc-provider" is: "Grantline, ... ÷ oidc-provider, ..."."""
    if row.vs_oidc_provider is None or row.oidc_provider_partner_label is None:
        return None
    return f"{row.label} ÷ {row.oidc_provider_partner_label}"


def text_table(rows: Sequence[Row]) -> str:
    lines: list[str] = []
    body = [_cells(r) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(_HEADERS)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    for scenario, group in _grouped(rows):
        s = SCENARIOS[scenario]
        lines += ["", f"{s.title} (ops = {s.unit})", line(_HEADERS)]
        lines += [line(_cells(r)) for r in group]
        divisions = [d for d in map(_divided_by, group) if d]
        lead = "÷ oidc-provider: "
        for i, division in enumerate(divisions):
            lines.append((lead if i == 0 else " " * len(lead)) + division)
    return "\n".join(lines)


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| scenario | " + " | ".join(_HEADERS) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in _HEADERS[1:]) + " |",
    ]
    for scenario, group in _grouped(rows):
        for row in group:
            lines.append(f"| {SCENARIOS[scenario].title} | " + " | ".join(_cells(row)) + " |")
    # Which oidc-provider each ratio is against: once per pairing, with the scenarios named
    # only when a row is paired differently in different scenarios.
    pairings: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        partner = row.oidc_provider_partner_label
        if row.vs_oidc_provider is not None and partner is not None:
            pairings.setdefault(row.label, {}).setdefault(partner, []).append(row.scenario)
    if pairings:
        lines += ["", "÷ oidc-provider is, per row:", ""]
    for label, partners in pairings.items():
        for partner, scenarios in partners.items():
            where = ""
            if len(partners) > 1:
                where = " (" + "; ".join(SCENARIOS[s].title for s in scenarios) + ")"
            lines.append(f"- {label} ÷ {partner}{where}")
    return "\n".join(lines)

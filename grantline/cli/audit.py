"""``grantline audit``: read the audit trail."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import click

from grantline.cli._common import data_dir_option, load, run_with_store
from grantline.models import AuditEvent
from grantline.storage import Store

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """Read the audit trail."""


@audit.command("tail")
@data_dir_option
@click.option("-n", "--lines", default=20, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def tail(data_dir: str | None, lines: int, as_json: bool) -> None:
    """Print the newest events, oldest first."""
    _, settings = load(data_dir)

    async def work(store: Store) -> list[AuditEvent]:
        async with store.reader() as tx:
            return await tx.tail(lines)

    for ev in run_with_store(settings, work):
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(ev), sort_keys=True))
            continue
        when = datetime.fromtimestamp(ev.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        who = " ".join(
            f"{k}={v}"
            for k, v in (
                ("client", ev.client_id),
                ("user", ev.user_id),
                ("request", ev.request_id and ev.request_id[:16]),
                ("grant", ev.grant_id),
            )
            if v
        )
        data = json.dumps(ev.data, sort_keys=True, ensure_ascii=False)
        click.echo(f"{ev.seq:>6} {when} {ev.type:<42} {who} {data}")

"""``grantline audit``: read the audit trail."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from grantline.audit.checkpoint import Checkpoint, checkpoint_now, read_checkpoint
from grantline.audit.trace import build_trace
from grantline.audit.verify import VerifyReport, verify_chain
from grantline.cli._common import data_dir_option, load, run_with_store
from grantline.context import system_clock
from grantline.models import AuditEvent
from grantline.protocol.jose import JoseFailure
from grantline.settings import Settings
from grantline.storage import Store
from grantline.storage.audit import AuditCheckpointRow

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """Read, verify, checkpoint, trace and export the audit trail."""


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


async def _checkpoints(store: Store, settings: Settings, files: Sequence[str]) -> list[Checkpoint]:
    """The checkpoints the database keeps plus those given as files, each signature checked."""
    found: list[Checkpoint] = []
    async with store.reader() as tx:
        stored = await tx.list_checkpoints()
        tokens = [(f"stored checkpoint {c.root[:16]}", c.jws) for c in stored]
        tokens += [(path, _checkpoint_text(path)) for path in files]
        for origin, token in tokens:
            try:
                found.append(await read_checkpoint(token, tx, secret=settings.secret_key))
            except JoseFailure as exc:
                raise click.ClickException(f"{origin}: {exc}") from None
    return found


def _checkpoint_text(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise click.ClickException(f"{path}: not a checkpoint file") from None
    if text.startswith("{"):
        try:
            return str(json.loads(text)["checkpoint"])
        except (ValueError, KeyError, TypeError):
            raise click.ClickException(f"{path}: not a checkpoint file") from None
    return text


@audit.command("verify")
@data_dir_option
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="A checkpoint written earlier by `grantline audit checkpoint` (repeatable).",
)
def verify(data_dir: str | None, checkpoint_files: tuple[str, ...]) -> None:
    """Recompute the hash chain; name the first event that does not match and exit 1."""
    _, settings = load(data_dir)

    async def work(store: Store) -> VerifyReport:
        checkpoints = await _checkpoints(store, settings, checkpoint_files)
        async with store.reader() as tx:
            return await verify_chain(tx, checkpoints)

    report = run_with_store(settings, work)
    for problem in report.problems:
        click.echo(f"FAILED at {problem.where}: {problem.reason}", err=True)
    if not report.ok:
        sys.exit(1)
    pruned = f", {report.pruned_bodies} with pruned bodies" if report.pruned_bodies else ""
    click.echo(
        f"ok: {report.events} events{pruned} in {len(report.heads)} lanes, heads root "
        f"{report.root}, {report.checkpoints} checkpoints matched"
    )


@audit.command("checkpoint")
@data_dir_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file, not stdout."
)
def checkpoint(data_dir: str | None, output: str | None) -> None:
    """Sign every lane's head, keep the checkpoint, and write it out for safekeeping."""
    _, settings = load(data_dir)
    now = system_clock()

    async def work(store: Store) -> AuditCheckpointRow:
        return await checkpoint_now(store, settings.issuer, now, secret=settings.secret_key)

    try:
        row = run_with_store(settings, work)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    document = json.dumps(
        {
            "issuer": settings.issuer,
            "root": row.root,
            "at": row.at,
            "checkpoint": row.jws,
        },
        indent=2,
    )
    if output is None:
        click.echo(document)
    else:
        Path(output).write_text(document + "\n", encoding="utf-8")
        click.echo(f"checkpoint of heads root {row.root} written to {output}", err=True)


def _parse_since(value: str | None) -> int:
    if value is None:
        return 0
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use seconds since the epoch or an ISO 8601 time") from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


@audit.command("export")
@data_dir_option
@click.option("--since", help="Events at or after this time (ISO 8601 or epoch seconds).")
@click.option(
    "--format", "format_", type=click.Choice(["jsonl"]), default="jsonl", show_default=True
)
def export(data_dir: str | None, since: str | None, format_: str) -> None:
    """Write events as JSON lines for a SIEM, with their digests and chain links."""
    _, settings = load(data_dir)
    start = _parse_since(since)

    async def work(store: Store) -> None:
        after = 0
        async with store.reader() as tx:
            while batch := await tx.chained_since(after, 5000):
                for stored in batch:
                    ev = stored.event
                    if ev.at >= start:
                        line = dataclasses.asdict(ev) | {
                            "body_sha256": stored.body_sha256,
                            "chain_hash": stored.chain_hash,
                            "lane": stored.lane,
                            "position": stored.position,
                            "body_pruned": stored.data_text is None,
                        }
                        click.echo(json.dumps(line, sort_keys=True, ensure_ascii=False))
                after = batch[-1].event.seq or after

    run_with_store(settings, work)


async def _trace_events(store: Store, ident: str) -> tuple[str, list[AuditEvent]]:
    """What ``ident`` names (grant, pushed request, token jti or user) and its events."""
    async with store.reader() as tx:
        grant = await tx.get_grant(ident)
        if grant is not None:
            events = await tx.events_for(grant_id=grant.grant_id, request_id=grant.request_id)
            return f"grant {ident}", events
        events = await tx.events_for(request_id=ident)
        if events:
            grant_ids = {e.grant_id for e in events if e.grant_id}
            for grant_id in sorted(grant_ids):
                events += await tx.events_for(grant_id=grant_id)
            return f"pushed request {ident}", _unique(events)
        token = await tx.get_token_by_jti(ident)
        if token is not None:
            grant = await tx.get_grant(token.grant_id)
            events = await tx.events_for(
                grant_id=token.grant_id, request_id=grant.request_id if grant else None
            )
            return f"access token jti {ident}", events
        user = await tx.get_user_by_username(ident) or await tx.get_user(ident)
        if user is not None:
            events = await tx.events_for(user_id=user.user_id)
            request_ids = {e.request_id for e in events if e.request_id}
            grant_ids = {e.grant_id for e in events if e.grant_id}
            for request_id in sorted(request_ids):
                events += await tx.events_for(request_id=request_id)
            for grant_id in sorted(grant_ids):
                events += await tx.events_for(grant_id=grant_id)
            return f"user {user.username} ({user.user_id})", _unique(events)
    raise click.ClickException(f"{ident!r} names no grant, pushed request, token jti or user")


def _unique(events: list[AuditEvent]) -> list[AuditEvent]:
    return sorted({e.seq: e for e in events}.values(), key=lambda e: e.seq or 0)


@audit.command("trace")
@data_dir_option
@click.argument("ident")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def trace(data_dir: str | None, ident: str, as_json: bool) -> None:
    """Show one authorization's line: pushed, shown, decided, token, actions; flag mismatches.

    IDENT is a grant id, a pushed-request id, an access token's jti, or a username or user id.
    Exits 1 when a mismatch is flagged.
    """
    _, settings = load(data_dir)

    async def work(store: Store) -> tuple[str, list[AuditEvent]]:
        return await _trace_events(store, ident)

    subject, events = run_with_store(settings, work)
    line_trace = build_trace(events)
    if as_json:
        for line in line_trace.lines:
            record = dataclasses.asdict(line.event) | {
                "stage": line.stage,
                "summary": line.summary,
                "flags": list(line.flags),
            }
            click.echo(json.dumps(record, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(f"Trace of {subject}: {len(line_trace.lines)} events")
        for line in line_trace.lines:
            when = datetime.fromtimestamp(line.event.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            click.echo(f"{line.event.seq:>6} {when} {line.stage:<9} {line.event.type}")
            click.echo(f"{'':>6} {line.summary}")
            for flag in line.flags:
                click.echo(f"{'':>6} !! {flag}")
        flags = line_trace.flags
        click.echo(f"{len(flags)} mismatch(es) flagged" if flags else "no mismatches")
    if line_trace.flags:
        sys.exit(1)

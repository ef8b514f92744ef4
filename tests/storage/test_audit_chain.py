"""The audit hash chain on SQLite and PostgreSQL: how appends chain, and how ``verify_chain``
names the first event an attacker with write access to the database changed.

Every tampering test edits rows directly with SQL, on a connection of its own, the way someone
holding the database file or credentials would; the store is only used to read the result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast

import asyncpg
import pytest

import grantline.audit.verify as verify_module
from grantline.audit import event
from grantline.audit.chain import GENESIS, ChainEntry, body_digest, link
from grantline.audit.checkpoint import Checkpoint, checkpoint_now, read_checkpoint
from grantline.audit.verify import Problem, VerifyReport, verify_chain
from grantline.models import AuditEvent
from grantline.storage import AuditLog, Store
from grantline.storage.audit import AuditCheckpointRow, ChainedEvent, canonical_json
from grantline.storage.postgres import to_dollar_params
from grantline.storage.schema import open_store
from tests.conftest import SECRET_KEY
from tests.helpers import ISSUER

NOW = 1_700_000_000

Tamper = Callable[..., Awaitable[None]]


class Boom(Exception):
    """Raised inside a transaction to force a rollback."""


def numbered(n: int, *, at: int | None = None, **data: object) -> AuditEvent:
    """The n-th event of a test: every header field set, so each can be tampered with."""
    return event(
        "token.issued",
        NOW + n if at is None else at,
        client_id="agent",
        user_id="user-1",
        request_id=f"req-{n}",
        grant_id=f"grant-{n}",
        scope="inbox.read",
        n=n,
        **data,
    )


async def append(store: Store, *events: AuditEvent) -> None:
    async with store.transaction() as tx:
        for ev in events:
            await tx.append(ev)


async def stored(store: Store) -> list[ChainedEvent]:
    async with store.reader() as tx:
        return await tx.chained_events(0, 10_000)


async def head(store: Store) -> tuple[int, str]:
    async with store.reader() as tx:
        return await tx.audit_head()


async def verify(store: Store, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
    async with store.reader() as tx:
        return await verify_chain(tx, checkpoints)


async def take_checkpoint(store: Store) -> Checkpoint:
    """Sign the current head, as ``grantline audit checkpoint`` does, and read it back."""
    row = await checkpoint_now(store, ISSUER, NOW, secret=SECRET_KEY)
    async with store.reader() as tx:
        return await read_checkpoint(row.jws, tx, secret=SECRET_KEY)


def recomputed(events: Sequence[ChainedEvent]) -> list[str]:
    """The links ``events`` should carry, recomputed from their headers and bodies."""
    prev, links = GENESIS, []
    for ev in events:
        prev = link(prev, ev.entry())
        links.append(prev)
    return links


@pytest.fixture
def database_url(backend: str, db_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{db_path}"


@pytest.fixture
async def tamper(store: Store, backend: str, database_url: str) -> Tamper:
    """Run one SQL statement (``?`` placeholders) on a connection of its own, autocommitted;
    ``store`` is requested first so the PostgreSQL tables are emptied before the test."""

    async def run(sql: str, *args: object) -> None:
        if backend == "postgresql":
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(to_dollar_params(sql), *args)
            finally:
                await conn.close()
        else:
            raw = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                raw.execute(sql, args)
            finally:
                raw.close()

    return run


@pytest.fixture
async def ten(store: Store) -> list[ChainedEvent]:
    """Ten events, each committed on its own, as the stored chain shows them."""
    for n in range(1, 11):
        await append(store, numbered(n))
    events = await stored(store)
    report = await verify(store)
    assert report.ok, report.problems
    assert report.events == 10
    return events


# -- appending ---------------------------------------------------------------------------


async def test_an_empty_log_verifies_with_the_genesis_head(store: Store) -> None:
    assert await head(store) == (0, GENESIS)
    report = await verify(store)
    assert report.ok, report.problems
    assert (report.events, report.last_seq, report.last_hash) == (0, 0, GENESIS)


async def test_events_get_contiguous_seqs_and_links_that_recompute(
    store: Store, ten: list[ChainedEvent]
) -> None:
    assert [e.event.seq for e in ten] == list(range(1, 11))
    assert [e.chain_hash for e in ten] == recomputed(ten)


async def test_a_stored_event_is_its_canonical_body_and_digest(
    store: Store, ten: list[ChainedEvent]
) -> None:
    for n, ev in enumerate(ten, start=1):
        expected = numbered(n)
        assert ev.event.type == expected.type
        assert ev.event.at == expected.at
        assert (ev.event.client_id, ev.event.user_id) == ("agent", "user-1")
        assert (ev.event.request_id, ev.event.grant_id) == (f"req-{n}", f"grant-{n}")
        assert ev.event.data == {"scope": "inbox.read", "n": n}
        assert ev.data_text == canonical_json(expected.data)
        assert ev.body_sha256 == body_digest(canonical_json(expected.data))
    assert ten[0].chain_hash == link(
        GENESIS,
        ChainEntry(
            1,
            "token.issued",
            NOW + 1,
            "agent",
            "user-1",
            "req-1",
            "grant-1",
            body_digest('{"n":1,"scope":"inbox.read"}'),
        ),
    )


async def test_the_head_names_the_newest_event_and_its_link(
    store: Store, ten: list[ChainedEvent]
) -> None:
    assert await head(store) == (10, ten[-1].chain_hash)
    report = await verify(store)
    assert (report.last_seq, report.last_hash) == (10, ten[-1].chain_hash)


async def test_several_events_in_one_transaction_chain_in_order(store: Store) -> None:
    await append(store, numbered(1))
    await append(store, *(numbered(n) for n in range(2, 7)))
    await append(store, numbered(7), numbered(8))
    events = await stored(store)
    assert [e.event.seq for e in events] == list(range(1, 9))
    assert [e.event.data["n"] for e in events] == list(range(1, 9))
    assert [e.chain_hash for e in events] == recomputed(events)
    assert await head(store) == (8, events[-1].chain_hash)
    assert (await verify(store)).ok


async def test_events_are_buffered_until_the_transaction_commits(store: Store) -> None:
    await append(store, numbered(1))
    before = await head(store)
    async with store.transaction() as tx:
        await tx.append(numbered(2))
        # Not chained yet: the head moves only in the last statements before COMMIT.
        assert await tx.audit_head() == before
        assert [e.seq for e in await tx.tail(10)] == [1]
    assert (await head(store))[0] == 2


async def test_a_rolled_back_transaction_leaves_no_event_and_keeps_the_head(
    store: Store,
) -> None:
    await append(store, numbered(1), numbered(2), numbered(3))
    before = await head(store)
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.append(numbered(4))
            await tx.append(numbered(5))
            raise Boom
    assert await head(store) == before
    assert [e.event.seq for e in await stored(store)] == [1, 2, 3]
    # The next commit continues right after the head: no gap where the rollback was.
    await append(store, numbered(6))
    events = await stored(store)
    assert [(e.event.seq, e.event.data["n"]) for e in events] == [(1, 1), (2, 2), (3, 3), (4, 6)]
    report = await verify(store)
    assert report.ok, report.problems
    assert report.last_seq == 4


async def test_concurrent_transactions_from_several_stores_make_one_unbroken_chain(
    store: Store, open_backend: Callable[[], Store]
) -> None:
    stores = [store, *(open_backend() for _ in range(3))]
    rounds = 25

    async def worker(w: int, mine: Store) -> None:
        for r in range(rounds):
            async with mine.transaction() as tx:
                await tx.append(numbered(r, worker=w, round=r, part=0))
                # A read inside the transaction lets PostgreSQL interleave the workers.
                await tx.audit_head()
                if r % 2:
                    await tx.append(numbered(r, worker=w, round=r, part=1))
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(w, s) for w, s in enumerate(stores)))

    events = await stored(store)
    per_worker = rounds + rounds // 2
    assert len(events) == len(stores) * per_worker
    assert [e.event.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.chain_hash for e in events] == recomputed(events)
    # A transaction's events are chained together, never split by another's.
    for first, second in zip(events, events[1:], strict=False):
        if second.event.data["part"] == 1:
            assert first.event.data | {"part": 1} == second.event.data
    seen = {(e.event.data["worker"], e.event.data["round"], e.event.data["part"]) for e in events}
    assert len(seen) == len(events)
    report = await verify(store)
    assert report.ok, report.problems
    assert (report.events, report.last_seq) == (len(events), len(events))


async def test_stores_in_separate_threads_make_one_unbroken_chain(
    store: Store, database_url: str
) -> None:
    """Each thread has its own event loop and connection, like a worker process: on SQLite
    the writers really wait on each other's locks, which one event loop never shows."""
    threads, rounds = 4, 15
    barrier = threading.Barrier(threads)

    def contender(w: int) -> None:
        async def run() -> None:
            mine = open_store(database_url)
            try:
                barrier.wait(timeout=10)
                for r in range(rounds):
                    await append(mine, numbered(r, worker=w, part=0), numbered(r, worker=w, part=1))
            finally:
                await mine.close()

        asyncio.run(run())

    await asyncio.gather(*(asyncio.to_thread(contender, w) for w in range(threads)))

    events = await stored(store)
    assert len(events) == threads * rounds * 2
    assert [e.event.seq for e in events] == list(range(1, len(events) + 1))
    for first, second in zip(events[::2], events[1::2], strict=True):
        assert (first.event.data["part"], second.event.data["part"]) == (0, 1)
        assert first.event.data["worker"] == second.event.data["worker"]
    report = await verify(store)
    assert report.ok, report.problems
    assert await head(store) == (len(events), events[-1].chain_hash)


async def test_an_append_committed_while_verify_runs_is_no_tampering(
    store: Store, open_backend: Callable[[], Store], ten: list[ChainedEvent]
) -> None:
    """``grantline audit verify`` runs against a live server: an event committed between
    verify's last read of the events and its read of the head must not read as a deletion."""
    server = open_backend()

    committed: list[int] = []

    class LiveLog:
        """The reader's log, with the server committing once right before the head is read."""

        def __init__(self, log: AuditLog) -> None:
            self._log = log

        async def chained_events(self, after_seq: int, limit: int) -> list[ChainedEvent]:
            return await self._log.chained_events(after_seq, limit)

        async def audit_head(self) -> tuple[int, str]:
            if not committed:
                await append(server, numbered(11))
                committed.append(11)
            return await self._log.audit_head()

    async with store.reader() as tx:
        report = await verify_chain(cast(AuditLog, LiveLog(tx)))
    assert committed == [11]
    assert report.ok, report.problems
    assert (report.events, report.last_seq) == (11, 11)


# -- retention -------------------------------------------------------------------------------


async def test_pruned_bodies_keep_the_chain_verifiable(
    store: Store, ten: list[ChainedEvent]
) -> None:
    async with store.transaction() as tx:
        assert await tx.prune_event_bodies(NOW + 6) == 5
    async with store.transaction() as tx:
        assert await tx.prune_event_bodies(NOW + 6) == 0
    events = await stored(store)
    assert [e.data_text is None for e in events] == [True] * 5 + [False] * 5
    assert [e.body_sha256 for e in events] == [e.body_sha256 for e in ten]
    assert [e.chain_hash for e in events] == [e.chain_hash for e in ten]
    assert events[0].event.data == {}
    assert events[5].event.data == {"scope": "inbox.read", "n": 6}
    report = await verify(store)
    assert report.ok, report.problems
    assert (report.events, report.pruned_bodies, report.last_seq) == (10, 5, 10)


async def test_a_forged_body_put_back_after_pruning_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    async with store.transaction() as tx:
        await tx.prune_event_bodies(NOW + 6)
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 2", '{"n":2,"scope":"admin"}')
    report = await verify(store)
    assert report.problems == [Problem(2, "the body of event 2 (token.issued) was changed")]


async def test_a_pruned_event_s_header_is_still_covered(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    async with store.transaction() as tx:
        await tx.prune_event_bodies(NOW + 6)
    await tamper("UPDATE audit_events SET client_id = ? WHERE seq = 3", "mallory")
    report = await verify(store)
    assert report.problems == [
        Problem(3, "event 3 does not link to event 2: its header, order or link was edited")
    ]


# -- checkpoints -------------------------------------------------------------------------------


async def test_checkpoints_are_kept_once_per_seq_and_listed_in_order(store: Store) -> None:
    rows = [
        AuditCheckpointRow(seq=7, hash="b" * 64, at=NOW + 7, jws="jws-7"),
        AuditCheckpointRow(seq=3, hash="a" * 64, at=NOW + 3, jws="jws-3"),
    ]
    async with store.transaction() as tx:
        assert [await tx.add_checkpoint(r) for r in rows] == [True, True]
    async with store.transaction() as tx:
        duplicate = AuditCheckpointRow(seq=7, hash="c" * 64, at=NOW + 8, jws="other")
        assert await tx.add_checkpoint(duplicate) is False
    async with store.reader() as tx:
        assert await tx.list_checkpoints() == [rows[1], rows[0]]


async def test_an_empty_log_lists_no_checkpoints(store: Store) -> None:
    async with store.reader() as tx:
        assert await tx.list_checkpoints() == []


async def test_a_signed_checkpoint_names_the_head_and_matches_verify(
    store: Store, ten: list[ChainedEvent]
) -> None:
    checkpoint = await take_checkpoint(store)
    assert (checkpoint.issuer, checkpoint.seq, checkpoint.hash) == (ISSUER, 10, ten[-1].chain_hash)
    assert checkpoint.at == NOW
    # Checkpointing an unchanged head again keeps the first one.
    await checkpoint_now(store, ISSUER, NOW + 60, secret=SECRET_KEY)
    async with store.reader() as tx:
        kept = await tx.list_checkpoints()
    assert [(c.seq, c.hash, c.at) for c in kept] == [(10, ten[-1].chain_hash, NOW)]
    report = await verify(store, [checkpoint])
    assert report.ok, report.problems
    assert report.checkpoints == 1


# -- tampering ---------------------------------------------------------------------------------


async def test_an_edited_body_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 4", '{"n":4,"scope":"admin"}')
    report = await verify(store)
    assert not report.ok
    assert report.problems == [Problem(4, "the body of event 4 (token.issued) was changed")]
    # Verify stops at the first bad event: the report covers what came before it.
    assert (report.events, report.last_seq, report.last_hash) == (4, 3, ten[2].chain_hash)


async def test_a_body_rewritten_to_the_same_meaning_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 9", '{"scope":"inbox.read","n":9}')
    report = await verify(store)
    assert report.problems == [Problem(9, "the body of event 9 (token.issued) was changed")]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("type", "grant.revoked"),
        ("at", NOW + 999),
        ("client_id", "mallory"),
        ("client_id", None),
        ("user_id", "user-2"),
        ("request_id", None),
        ("grant_id", "grant-9"),
        ("chain_hash", "f" * 64),
    ],
)
async def test_an_edited_header_column_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper, column: str, value: object
) -> None:
    # The column name is one of the fixed names above.
    await tamper(f"UPDATE audit_events SET {column} = ? WHERE seq = 5", value)  # noqa: S608
    report = await verify(store)
    assert report.problems == [
        Problem(5, "event 5 does not link to event 4: its header, order or link was edited")
    ]
    assert report.last_seq == 4


async def test_an_edited_body_with_its_digest_recomputed_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    forged = '{"n":4,"scope":"admin"}'
    await tamper(
        "UPDATE audit_events SET data = ?, body_sha256 = ? WHERE seq = 4",
        forged,
        body_digest(forged),
    )
    report = await verify(store)
    assert report.problems == [
        Problem(4, "event 4 does not link to event 3: its header, order or link was edited")
    ]


async def test_a_deleted_middle_event_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events WHERE seq = 5")
    report = await verify(store)
    assert report.problems == [
        Problem(
            6,
            "event 6 does not follow event 4: events between them were deleted, "
            "or rows were reordered",
        )
    ]


async def test_a_deleted_event_at_a_batch_boundary_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "_BATCH", 3)
    assert (await verify(store)).ok
    await tamper("DELETE FROM audit_events WHERE seq = 4")
    report = await verify(store)
    assert [p.seq for p in report.problems] == [5]
    assert report.problems[0].reason.startswith("event 5 does not follow event 3:")


async def test_a_deleted_first_event_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events WHERE seq = 1")
    report = await verify(store)
    assert [p.seq for p in report.problems] == [2]
    assert "does not follow event 0: events between them were deleted" in report.problems[0].reason


async def test_swapped_events_are_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("UPDATE audit_events SET seq = -1 WHERE seq = 4")
    await tamper("UPDATE audit_events SET seq = 4 WHERE seq = 7")
    await tamper("UPDATE audit_events SET seq = 7 WHERE seq = -1")
    events = await stored(store)
    assert [e.event.data["n"] for e in events] == [1, 2, 3, 7, 5, 6, 4, 8, 9, 10]
    report = await verify(store)
    assert report.problems == [
        Problem(4, "event 4 does not link to event 3: its header, order or link was edited")
    ]


async def test_the_newest_events_deleted_are_named_by_the_head(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events WHERE seq > 7")
    report = await verify(store)
    assert report.problems == [
        Problem(
            8,
            "the log ends at event 7 but its head names event 10: the newest events were deleted",
        )
    ]
    assert report.events == 7


async def test_every_event_deleted_is_named_by_the_head(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events")
    report = await verify(store)
    assert [p.seq for p in report.problems] == [1]
    assert "its head names event 10: the newest events were deleted" in report.problems[0].reason


async def test_the_newest_event_rewritten_with_its_link_is_named_by_the_head(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    """The last link can be recomputed by anyone; the head still holds the original."""
    forged = '{"n":10,"scope":"admin"}'
    entry = dataclasses.replace(ten[-1].entry(), body_sha256=body_digest(forged))
    await tamper(
        "UPDATE audit_events SET data = ?, body_sha256 = ?, chain_hash = ? WHERE seq = 10",
        forged,
        entry.body_sha256,
        link(ten[8].chain_hash, entry),
    )
    report = await verify(store)
    assert report.problems == [
        Problem(
            10, "event 10 does not match the chain head: the newest event or the head was rewritten"
        )
    ]


async def test_an_event_added_behind_the_head_s_back_is_named(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    forged = '{"n":11,"scope":"admin"}'
    entry = ChainEntry(
        11, "token.issued", NOW + 11, "agent", "user-1", "req-11", "grant-11", body_digest(forged)
    )
    await tamper(
        "INSERT INTO audit_events (seq, type, at, client_id, user_id, request_id, grant_id, "
        "data, body_sha256, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        11,
        entry.type,
        entry.at,
        entry.client_id,
        entry.user_id,
        entry.request_id,
        entry.grant_id,
        forged,
        entry.body_sha256,
        link(ten[-1].chain_hash, entry),
    )
    report = await verify(store)
    assert report.problems == [
        Problem(
            11,
            "event 11 is past the chain head (event 10): "
            "events were inserted without moving the head",
        )
    ]


async def test_truncation_with_the_head_rewound_is_caught_only_by_an_earlier_checkpoint(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    checkpoint = await take_checkpoint(store)
    assert checkpoint.seq == 10
    await tamper("DELETE FROM audit_events WHERE seq > 7")
    await tamper("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", 7, ten[6].chain_hash)
    await tamper("DELETE FROM audit_checkpoints")

    without = await verify(store)
    assert without.ok, without.problems
    assert (without.events, without.last_seq) == (7, 7)

    report = await verify(store, [checkpoint])
    assert report.problems == [
        Problem(
            8,
            "the log ends at event 7 but a checkpoint signed at 10 covers more: "
            "events were deleted from the end",
        )
    ]


async def test_truncation_refilled_to_the_checkpoint_s_seq_is_caught_by_it(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    """After the rewind the server appends on: by the time verify runs, the log may again
    reach the checkpoint's seq, with other events there."""
    checkpoint = await take_checkpoint(store)
    await tamper("DELETE FROM audit_events WHERE seq > 7")
    await tamper("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", 7, ten[6].chain_hash)
    await tamper("DELETE FROM audit_checkpoints")
    await append(store, numbered(8, at=NOW + 100), numbered(9), numbered(10))
    later = await take_checkpoint(store)
    assert (later.seq, await head(store)) == (10, (10, later.hash))
    assert later.hash != checkpoint.hash

    assert (await verify(store, [later])).ok
    expected = [Problem(10, "event 10 differs from the checkpoint signed at 10")]
    assert (await verify(store, [checkpoint])).problems == expected
    # Every checkpoint given is checked, whatever else is given beside it.
    assert (await verify(store, [checkpoint, later])).problems == expected
    assert (await verify(store, [later, checkpoint])).problems == expected


async def test_a_recomputed_chain_with_a_forged_head_is_caught_only_by_an_older_checkpoint(
    store: Store, tamper: Tamper
) -> None:
    for n in range(1, 7):
        await append(store, numbered(n))
    before_edit = await take_checkpoint(store)
    await append(store, numbered(1_000, at=NOW + 2))  # unrelated: an event before the edit
    early = await take_checkpoint(store)
    for n in range(8, 11):
        await append(store, numbered(n))
    assert (before_edit.seq, early.seq) == (6, 7)

    # Rewrite event 3's body, then every digest and link from there on, and the head.
    forged = '{"n":3,"scope":"admin"}'
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 3", forged)
    events = await stored(store)
    prev = events[1].chain_hash
    for ev in events[2:]:
        assert ev.data_text is not None
        entry = dataclasses.replace(ev.entry(), body_sha256=body_digest(ev.data_text))
        prev = link(prev, entry)
        await tamper(
            "UPDATE audit_events SET body_sha256 = ?, chain_hash = ? WHERE seq = ?",
            entry.body_sha256,
            prev,
            ev.event.seq,
        )
    await tamper("UPDATE audit_head SET hash = ? WHERE id = 1", prev)
    await tamper("DELETE FROM audit_checkpoints")

    without = await verify(store)
    assert without.ok, without.problems
    assert without.last_hash == prev

    report = await verify(store, [before_edit])
    assert report.problems == [Problem(6, "event 6 differs from the checkpoint signed at 6")]
    assert (await verify(store, [early])).problems == [
        Problem(7, "event 7 differs from the checkpoint signed at 7")
    ]


async def test_a_checkpoint_before_the_edit_cannot_see_it(
    store: Store, ten: list[ChainedEvent], tamper: Tamper
) -> None:
    """What a checkpoint proves is the prefix up to its seq, not what follows it."""
    checkpoint = Checkpoint(ISSUER, 2, ten[1].chain_hash, NOW, "kid")
    forged = '{"n":5,"scope":"admin"}'
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 5", forged)
    events = await stored(store)
    prev = events[3].chain_hash
    for ev in events[4:]:
        assert ev.data_text is not None
        entry = dataclasses.replace(ev.entry(), body_sha256=body_digest(ev.data_text))
        prev = link(prev, entry)
        await tamper(
            "UPDATE audit_events SET body_sha256 = ?, chain_hash = ? WHERE seq = ?",
            entry.body_sha256,
            prev,
            ev.event.seq,
        )
    await tamper("UPDATE audit_head SET hash = ? WHERE id = 1", prev)
    report = await verify(store, [checkpoint])
    assert report.ok, report.problems

"""SQLite group commit: units of work that run together share one COMMIT, each still atomic
on its own, and nobody answers before what they wrote or read is durable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from grantline.audit import event
from grantline.audit.verify import verify_chain
from grantline.models import Session
from grantline.storage import StorageUnavailable, Store
from grantline.storage.sql import SQLiteStore


def _session(n: int) -> Session:
    return Session(session_id=f"s{n}", user_id=f"u{n}", created_at=0, expires_at=10**10)


async def _write(store: Store, n: int, *, fail: bool = False) -> None:
    async with store.transaction() as tx:
        await tx.add_session(_session(n))
        await tx.append(event("user.login_succeeded", 0, user_id=f"u{n}", n=n))
        if fail:
            raise ValueError(f"unit {n} fails after writing")


def _committed_sessions(db_path: Path) -> set[str]:
    other = sqlite3.connect(db_path)
    try:
        return {row[0] for row in other.execute("SELECT session_id FROM sessions")}
    finally:
        other.close()


def _count_commits(store: SQLiteStore) -> list[str]:
    statements: list[str] = []
    store._conn.set_trace_callback(
        lambda sql: statements.append(sql) if sql.startswith("COMMIT") else None
    )
    return statements


async def test_units_that_run_together_share_one_commit(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    commits = _count_commits(store)
    await asyncio.gather(*(_write(store, n) for n in range(20)))
    assert len(commits) == 1
    assert _committed_sessions(db_path) == {f"s{n}" for n in range(20)}
    async with store.reader() as tx:
        report = await verify_chain(tx)
        events = await tx.tail(50)
    assert report.ok, report.problems
    assert sorted(e.data["n"] for e in events if e.type == "user.login_succeeded") == list(
        range(20)
    )
    await store.close()


async def test_a_unit_that_fails_is_rolled_back_alone(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    results = await asyncio.gather(
        _write(store, 1), _write(store, 2, fail=True), _write(store, 3), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert _committed_sessions(db_path) == {"s1", "s3"}
    async with store.reader() as tx:
        events = [e for e in await tx.tail(10) if e.type == "user.login_succeeded"]
        report = await verify_chain(tx)
    # The failed unit's event went with its rows.
    assert sorted(e.data["n"] for e in events) == [1, 3]
    assert report.ok, report.problems
    await store.close()


async def test_a_unit_returns_only_once_its_batch_is_durable(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    seen_by_others: list[set[str]] = []

    async def write_then_look(n: int) -> None:
        await _write(store, n)
        seen_by_others.append(_committed_sessions(db_path))

    await asyncio.gather(*(write_then_look(n) for n in range(5)))
    # Each unit, on return, finds every unit of its batch visible to another connection.
    assert all(seen == {f"s{n}" for n in range(5)} for seen in seen_by_others)
    await store.close()


async def test_a_failed_commit_fails_every_unit_of_the_batch_and_keeps_nothing(
    db_path: Path,
) -> None:
    store = SQLiteStore(str(db_path))
    # The lane head the events need is gone: sealing the batch fails at COMMIT time.
    store._conn.execute("DELETE FROM audit_head")
    results = await asyncio.gather(*(_write(store, n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    assert _committed_sessions(db_path) == set()
    assert not store._conn.in_transaction
    await store.close()


async def test_a_reader_never_sees_a_batch_before_its_commit(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    found: list[bool] = []

    async def unit_then_read() -> None:
        async with store.transaction() as tx:
            await tx.add_session(_session(1))
            # The batch is open and holds this write; a reader must not see it yet.
            async with store.reader() as reader:
                found.append(await reader.get_session("s1", 0) is not None)
        async with store.reader() as reader:
            found.append(await reader.get_session("s1", 0) is not None)

    await unit_then_read()
    assert found == [False, True]
    await store.close()


async def test_waiting_for_another_process_lock_keeps_the_event_loop_running(
    db_path: Path,
) -> None:
    store = SQLiteStore(str(db_path))
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    writing = asyncio.create_task(_write(store, 1))
    await asyncio.sleep(0.2)
    assert not writing.done()
    assert ticks >= 10  # the loop was not blocked in SQLite's busy handler
    other.execute("COMMIT")
    await asyncio.wait_for(writing, 2)
    ticker.cancel()
    other.close()
    assert _committed_sessions(db_path) == {"s1"}
    await store.close()


async def test_a_lock_held_too_long_answers_storage_unavailable(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(str(db_path))
    monkeypatch.setattr(store, "LOCK_TIMEOUT", 0.1)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageUnavailable, match="locked"):
            await _write(store, 1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    # And the store works again once the lock is free.
    await _write(store, 2)
    assert _committed_sessions(db_path) == {"s2"}
    await store.close()


async def test_the_checkpoint_thread_ends_with_its_store_however_it_is_closed(
    db_path: Path,
) -> None:
    def checkpointers() -> int:
        return sum(t.name == "sqlite-checkpoint" for t in threading.enumerate())

    before = checkpointers()
    closed_properly = SQLiteStore(str(db_path))
    await _write(closed_properly, 1)
    closed_by_hand = SQLiteStore(str(db_path))
    await _write(closed_by_hand, 2)
    assert checkpointers() == before + 2
    await closed_properly.close()
    closed_by_hand._conn.close()  # as a test fixture or a careless caller might
    deadline = time.monotonic() + 5
    while checkpointers() > before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert checkpointers() == before
    closed_by_hand._read_conn.close()


def _trace(store: SQLiteStore) -> list[str]:
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    return statements


async def test_units_that_only_insert_run_no_statement_of_their_own(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    statements = _trace(store)
    await asyncio.gather(*(_write(store, n) for n in range(20)))
    # Their rows went in with the batch's: one savepoint for all of them, none per unit.
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 1
    assert sum(s.startswith("INSERT INTO sessions") for s in statements) == 20
    assert _committed_sessions(db_path) == {f"s{n}" for n in range(20)}
    await store.close()


async def test_a_row_sqlite_refuses_at_commit_fails_its_own_unit_only(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await _write(store, 2)
    # s2 again: its held-back insert is refused when the batch writes it; the batch's rows
    # are then written unit by unit and only the duplicate fails, with SQLite's own error.
    results = await asyncio.gather(
        _write(store, 1), _write(store, 2), _write(store, 3), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert _committed_sessions(db_path) == {"s1", "s2", "s3"}
    async with store.reader() as tx:
        logged = [e.data["n"] for e in await tx.tail(10) if e.type == "user.login_succeeded"]
        report = await verify_chain(tx)
    assert report.ok, report.problems
    # The refused unit's event went with its row: s2's one event is the first write's.
    assert sorted(logged) == [1, 2, 3]
    await store.close()


async def test_a_unit_that_reads_sends_its_held_back_inserts_first(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    async with store.transaction() as tx:
        await tx.add_session(_session(1))
        assert await tx.get_session("s1", 0) is not None
        await tx.add_session(_session(2))  # once in the batch, inserts run at once
        assert await tx.get_session("s2", 0) is not None
    assert _committed_sessions(db_path) == {"s1", "s2"}
    with pytest.raises(sqlite3.IntegrityError):
        async with store.transaction() as tx:
            await tx.add_session(_session(3))
            await tx.add_session(_session(1))  # taken: refused when the unit enters the batch
            await tx.get_session("s3", 0)
    assert _committed_sessions(db_path) == {"s1", "s2"}
    # The store is usable afterwards: the lock was given back.
    await _write(store, 4)
    assert _committed_sessions(db_path) == {"s1", "s2", "s4"}
    await store.close()

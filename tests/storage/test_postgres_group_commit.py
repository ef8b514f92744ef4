"""PostgreSQL group commit: units that only insert share one transaction, each still atomic on
its own and answered only after its COMMIT; units that read or update keep a transaction of
their own; concurrent reads of the client generation share a query but never a stale one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from grantline.audit import event
from grantline.audit.verify import verify_chain
from grantline.storage import StorageUnavailable
from grantline.storage.postgres import PostgresStore, SharedRead
from grantline.storage.statements import batched_statements
from tests.storage.conftest import _empty_tables
from tests.storage.test_group_commit import _session, _write


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[PostgresStore]:
    await _empty_tables(postgres_url)
    store = PostgresStore(postgres_url)
    yield store
    await store.close()


async def _query(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _committed_sessions(url: str) -> set[str]:
    return {r[0] for r in await _query(url, "SELECT session_id FROM sessions")}


async def test_units_that_only_insert_share_one_transaction(
    pg: PostgresStore, postgres_url: str
) -> None:
    await asyncio.gather(*(_write(pg, n) for n in range(20)))
    # Rows written by one transaction carry its id in xmin: one id for the sessions and the
    # events of all twenty units.
    sessions = await _query(postgres_url, "SELECT DISTINCT xmin::text FROM sessions")
    events = await _query(postgres_url, "SELECT DISTINCT xmin::text FROM audit_events")
    assert len(sessions) == 1
    assert [r[0] for r in events] == [r[0] for r in sessions]
    assert await _committed_sessions(postgres_url) == {f"s{n}" for n in range(20)}
    async with pg.reader() as tx:
        report = await verify_chain(tx)
        logged = await tx.tail(50)
    assert report.ok, report.problems
    assert [e.data["n"] for e in logged] == list(range(20))


async def test_a_unit_that_raises_writes_nothing_and_the_others_commit(
    pg: PostgresStore, postgres_url: str
) -> None:
    results = await asyncio.gather(
        _write(pg, 1), _write(pg, 2, fail=True), _write(pg, 3), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert await _committed_sessions(postgres_url) == {"s1", "s3"}
    async with pg.reader() as tx:
        logged = await tx.tail(10)
        assert (await verify_chain(tx)).ok
    assert sorted(e.data["n"] for e in logged) == [1, 3]


async def test_a_row_the_database_refuses_fails_its_own_unit_only(
    pg: PostgresStore, postgres_url: str
) -> None:
    await _write(pg, 2)
    # Unit 2 again: its session id is taken, so the batch's INSERT fails; each unit is then
    # written alone and only the duplicate fails, with the database's own error.
    results = await asyncio.gather(
        _write(pg, 1), _write(pg, 2), _write(pg, 3), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], asyncpg.UniqueViolationError)
    assert await _committed_sessions(postgres_url) == {"s1", "s2", "s3"}
    async with pg.reader() as tx:
        logged = await tx.tail(10)
        report = await verify_chain(tx)
    assert report.ok, report.problems
    # The refused unit's event went with its row.
    assert sorted(e.data["n"] for e in logged) == [1, 2, 3]


async def test_a_unit_returns_only_once_its_rows_are_committed(
    pg: PostgresStore, postgres_url: str
) -> None:
    seen: list[set[str]] = []

    async def write_then_look(n: int) -> None:
        await _write(pg, n)
        seen.append(await _committed_sessions(postgres_url))

    await asyncio.gather(*(write_then_look(n) for n in range(5)))
    # The five ran together, so each found all five committed by the time it returned.
    assert seen == [{f"s{n}" for n in range(5)}] * 5


async def test_a_unit_that_reads_gets_its_own_transaction_and_sees_its_inserts(
    pg: PostgresStore, postgres_url: str
) -> None:
    async with pg.transaction() as tx:
        await tx.add_session(_session(7))
        # The held-back insert goes first on the unit's own connection.
        assert await tx.get_session("s7", 0) is not None
        async with pg.reader() as other:
            assert await other.get_session("s7", 0) is None  # not before the COMMIT
        await tx.append(event("user.login_succeeded", 0, user_id="u7", n=7))
    await asyncio.gather(_write(pg, 8), _write(pg, 9))
    xmins = await _query(postgres_url, "SELECT session_id, xmin::text FROM sessions")
    by_session = {r[0]: r[1] for r in xmins}
    assert by_session["s8"] == by_session["s9"] != by_session["s7"]
    async with pg.reader() as tx:
        assert (await verify_chain(tx)).ok


async def test_a_lost_server_fails_every_unit_of_the_batch_with_storage_unavailable(
    postgres_url: str,
) -> None:
    await _empty_tables(postgres_url)
    # Nothing listens on port 9: the batch's connection fails, and every unit with it.
    base, _, name = postgres_url.rpartition("/")
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:9/{name}")
    results = await asyncio.gather(*(_write(store, n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    with pytest.raises(StorageUnavailable):
        async with store.reader() as tx:
            await tx.client_generation()
    await store.close()
    assert await _committed_sessions(postgres_url) == set()


async def test_a_missing_lane_head_fails_the_unit_and_keeps_nothing(
    pg: PostgresStore, postgres_url: str
) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("DELETE FROM audit_head")
    finally:
        await conn.close()
    with pytest.raises(LookupError, match="no head row"):
        await _write(pg, 1)
    assert await _committed_sessions(postgres_url) == set()


def test_batched_statements_keep_every_units_order() -> None:
    a, b = "INSERT INTO a", "INSERT INTO b"
    runs = batched_statements([[(a, (1,)), (b, (2,))], [(a, (3,))], [(b, (4,))]])
    assert runs == [(a, [(1,), (3,)]), (b, [(2,), (4,)])]
    # A unit that writes b before a cannot be batched by statement without reordering it.
    crossed = batched_statements([[(a, (1,)), (b, (2,))], [(b, (3,)), (a, (4,))]])
    assert crossed == [(a, [(1,)]), (b, [(2,)]), (b, [(3,)]), (a, [(4,)])]


async def test_shared_read_joins_only_a_query_sent_after_the_caller_arrived() -> None:
    values = iter([1, 2, 3])
    gates: list[asyncio.Event] = []
    sent = 0

    async def fetch() -> int:
        nonlocal sent
        sent += 1
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        return next(values)

    shared = SharedRead(fetch)
    first = asyncio.create_task(shared.read())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sent == 1
    # These arrive while the first query is out: they must not take its answer.
    late = [asyncio.create_task(shared.read()) for _ in range(5)]
    await asyncio.sleep(0)
    gates[0].set()
    assert await first == 1
    await asyncio.sleep(0)
    assert sent == 2  # one more query, for all five
    gates[1].set()
    assert await asyncio.gather(*late) == [2, 2, 2, 2, 2]
    assert sent == 2


async def test_shared_read_passes_a_failure_to_its_callers_and_recovers() -> None:
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("connection refused")
        return 5

    shared = SharedRead(fetch)
    results = await asyncio.gather(shared.read(), shared.read(), return_exceptions=True)
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    assert await shared.read() == 5


async def test_the_generation_read_by_concurrent_requests_is_one_query_and_fresh(
    pg: PostgresStore, postgres_url: str
) -> None:
    queries = 0
    fetch = pg._read_generation

    async def counted() -> int:
        nonlocal queries
        queries += 1
        return await fetch()

    pg._generation = SharedRead(counted)

    async def generation() -> int:
        async with pg.reader() as tx:
            return await tx.client_generation()

    first = await asyncio.gather(*(generation() for _ in range(30)))
    assert len(set(first)) == 1 and queries == 1
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("UPDATE client_generation SET value = value + 1 WHERE id = 1")
    finally:
        await conn.close()
    # A change committed before the read is always seen.
    assert await generation() == first[0] + 1

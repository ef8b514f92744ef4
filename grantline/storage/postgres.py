"""The SQL implementation on PostgreSQL, through asyncpg, with group commit.

The statements are ``SqlTransaction``'s, written once with ``?`` placeholders; they are turned
into PostgreSQL's ``$n`` form once each and cached. asyncpg rather than an ORM or a DB-API
driver: on this project's hardware raw asyncpg stored 6.8k pushes/s against 2.6k/s through
SQLAlchemy's async engine.

Round trips, not statements, are what a request pays for here: each costs the worker and the
server a few tens of microseconds of CPU whatever it carries. So a connection is taken only
when a statement needs one, and a unit of work that only inserts (a pushed request and its
audit event, say) sends nothing at all: it hands its rows to the process's group commit, which
writes the rows of every unit that was ready together in one transaction of six round trips
(benchmarks/README.md, "What changed because of it"). A unit that reads or updates gets a
connection and a transaction of its own at its first such statement, as before, and its
held-back inserts go first on it. Each unit returns only after the COMMIT that holds its rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any, Generic, TypeVar

import asyncpg

from grantline.models import AuditEvent
from grantline.storage import StorageUnavailable
from grantline.storage.sql import SqlTransaction
from grantline.storage.statements import HeldUnit, Statement, batched_statements

__all__ = ["PostgresStore", "PostgresTransaction", "SharedRead", "to_dollar_params"]


#: What a lost or unreachable server looks like; the request may be retried once it is back.
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    # Transient by nature: the client may simply retry.
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)

T = TypeVar("T")


@lru_cache(maxsize=512)
def to_dollar_params(sql: str) -> str:
    """``?`` placeholders to ``$1, $2, ...``; the statements have no ``?`` in literals."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag, e.g. ``UPDATE 1`` or ``INSERT 0 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _unavailable(exc: BaseException) -> StorageUnavailable:
    return StorageUnavailable(type(exc).__name__)


class PostgresTransaction(SqlTransaction):
    """Statements on one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._pending = []

    async def _one(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._conn.fetchrow(to_dollar_params(sql), *args)

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return list(await self._conn.fetch(to_dollar_params(sql), *args))

    async def _run(self, sql: str, args: Sequence[Any]) -> int:
        return _rowcount(await self._conn.execute(to_dollar_params(sql), *args))

    async def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # asyncpg pipelines the rows: one round trip, however many.
        if rows:
            await self._conn.executemany(to_dollar_params(sql), rows)

    async def _lane_rows(self, lanes: list[int]) -> list[Any]:
        # Row locks, taken in lane order (the ORDER BY is below the locks in the plan), so
        # two transactions never wait on each other crosswise; one statement for every lane.
        return list(
            await self._conn.fetch(
                "SELECT lane, position, hash FROM audit_head WHERE lane = ANY($1::int[]) "
                "ORDER BY lane FOR UPDATE",
                lanes,
            )
        )


class _LazyTransaction(PostgresTransaction):
    """A reader's or a unit's statements; the connection is taken at the first statement that
    needs one. A unit's inserts are held back until then (or until its end)."""

    __slots__ = ("_held", "_store", "_txn", "_write")

    def __init__(self, store: PostgresStore, *, write: bool) -> None:
        super().__init__(None)
        self._store = store
        self._write = write
        self._held: list[Statement] = []
        self._txn: Any = None

    async def _connection(self) -> Any:
        if self._conn is None:
            pool = await self._store._get_pool()
            conn = await pool.acquire()
            try:
                if self._write:
                    txn = conn.transaction()
                    await txn.start()
                    self._txn = txn
                    for sql, args in self._held:
                        await conn.execute(to_dollar_params(sql), *args)
                    self._held.clear()
            except BaseException:
                await pool.release(conn)
                raise
            self._conn = conn
        return self._conn

    async def _one(self, sql: str, args: Sequence[Any]) -> Any:
        await self._connection()
        return await super()._one(sql, args)

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        await self._connection()
        return await super()._all(sql, args)

    async def _run(self, sql: str, args: Sequence[Any]) -> int:
        await self._connection()
        return await super()._run(sql, args)

    async def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._connection()
        await super()._run_many(sql, rows)

    async def _insert(self, sql: str, args: Sequence[Any]) -> None:
        if self._write and self._conn is None:
            self._held.append((sql, args))
        else:
            await self._run(sql, args)

    async def client_generation(self) -> int:
        if self._conn is not None:
            # Inside a transaction of its own, the unit reads what it may itself have changed.
            return await super().client_generation()
        return await self._store._generation.read()

    async def finish(self, failure: BaseException | None) -> None:
        """End the unit: commit (its events sealed first) or roll back its own transaction,
        or hand what it held back to the group commit."""
        if self._conn is None:
            if failure is None and (self._held or self._pending):
                await self._store._group.submit(self._held, self._pending)
            return
        try:
            if self._write:
                if failure is None:
                    await self.seal_audit()
                    await self._txn.commit()
                else:
                    await self._txn.rollback()
        finally:
            # A transaction left open by a failed COMMIT is rolled back by the pool's reset.
            await self._store._pool.release(self._conn)
            self._conn = None


class _Unit:
    """``PostgresStore.transaction()`` and ``reader()``; a class rather than a generator-based
    context manager, since it is entered on every request."""

    __slots__ = ("_store", "_tx", "_write")

    def __init__(self, store: PostgresStore, *, write: bool) -> None:
        self._store = store
        self._write = write

    async def __aenter__(self) -> PostgresTransaction:
        self._tx = _LazyTransaction(self._store, write=self._write)
        return self._tx

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        try:
            await self._tx.finish(exc)
        except _UNAVAILABLE as failure:
            raise _unavailable(failure) from failure
        if isinstance(exc, _UNAVAILABLE):
            raise _unavailable(exc) from exc


class _GroupCommit:
    """The units that were ready together, written in one transaction.

    One batch is in flight per process; units that arrive meanwhile form the next, so batches
    grow with the load and a lone unit waits for no one. When a batch fails for anything but
    an unreachable server, each of its units is tried again alone, so one bad row fails its
    own unit only.
    """

    __slots__ = ("_draining", "_queue", "_store", "_task")

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._queue: list[HeldUnit] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, inserts: list[Statement], events: list[AuditEvent]) -> None:
        loop = asyncio.get_running_loop()
        work = HeldUnit(inserts, events, loop.create_future())
        self._queue.append(work)
        if not self._draining:
            self._draining = True
            # Runs after everything already ready: those units join this batch.
            self._task = loop.create_task(self._drain())
        await work.waiter

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._commit(batch)
        finally:
            self._draining = False
            for work in self._queue:  # only when cancelled, at shutdown
                work.settle(StorageUnavailable("the store is closing"))
            self._queue = []

    async def _commit(self, batch: list[HeldUnit]) -> None:
        try:
            await self._write(batch)
        except _UNAVAILABLE as exc:
            failure = _unavailable(exc)
            for work in batch:
                work.settle(failure)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].settle(exc)
            else:
                for work in batch:
                    await self._commit([work])
        except BaseException:
            for work in batch:
                work.settle(StorageUnavailable("the store is closing"))
            raise
        else:
            for work in batch:
                work.settle(None)

    async def _write(self, batch: list[HeldUnit]) -> None:
        pool = await self._store._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            tx = PostgresTransaction(conn)
            for sql, rows in batched_statements([work.inserts for work in batch]):
                await tx._run_many(sql, rows)
            tx._pending = [event for work in batch for event in work.events]
            await tx.seal_audit()


class SharedRead(Generic[T]):
    """Concurrent reads of one value served by one query.

    A caller joins the next query to start, never one already sent: a change committed before
    the caller arrived is always seen (the client generation must be, RFC 9126 7.4), and the
    callers that arrive together share one round trip.
    """

    __slots__ = ("_fetch", "_running", "_task", "_waiting")

    def __init__(self, fetch: Callable[[], Awaitable[T]]) -> None:
        self._fetch = fetch
        self._waiting: list[asyncio.Future[T]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> T:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._waiting.append(waiter)
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._serve())
        return await waiter

    async def _serve(self) -> None:
        try:
            while self._waiting:
                waiters, self._waiting = self._waiting, []
                try:
                    value = await self._fetch()
                except BaseException as exc:
                    failure = _unavailable(exc) if isinstance(exc, _UNAVAILABLE) else exc
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(failure)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(value)
        finally:
            self._running = False
            for waiter in self._waiting:
                if not waiter.done():
                    waiter.set_exception(StorageUnavailable("the store is closing"))
            self._waiting = []


class PostgresStore:
    """``grantline.storage.Store`` over an asyncpg pool, created on first use in the running
    event loop (a pool cannot outlive or cross loops)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = url
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._group = _GroupCommit(self)
        self._generation = SharedRead(self._read_generation)

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._url,
                        min_size=self._min_size,
                        max_size=self._max_size,
                        command_timeout=10,
                        timeout=5,
                    )
        return self._pool

    async def _read_generation(self) -> int:
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            return int(await conn.fetchval("SELECT value FROM client_generation WHERE id = 1"))

    def transaction(self) -> _Unit:
        return _Unit(self, write=True)

    def reader(self) -> _Unit:
        return _Unit(self, write=False)

    async def ping(self) -> None:
        async with self.reader() as tx:
            await tx._one("SELECT 1", ())

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

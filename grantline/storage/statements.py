"""The statement primitives every SQL mixin is written against (each database's transaction
class, ``SQLiteTransaction`` and ``PostgresTransaction``, implements them), and what the two
group commits share: a unit's held-back rows and how several units' rows go out together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from grantline.models import AuditEvent

__all__ = ["HeldUnit", "SqlStatements", "Statement", "batched_statements"]

#: A statement and its arguments, held back to be sent with others.
Statement = tuple[str, Sequence[Any]]


class SqlStatements:
    __slots__ = ()

    async def _one(self, sql: str, args: Sequence[Any]) -> Any:
        """The first row, or None."""
        raise NotImplementedError

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def _run(self, sql: str, args: Sequence[Any]) -> int:
        """Execute; the number of rows changed."""
        raise NotImplementedError

    async def _insert(self, sql: str, args: Sequence[Any]) -> None:
        """Execute a statement whose outcome nobody reads (an INSERT that cannot conflict);
        a database may hold it back to its unit's COMMIT and send it with others."""
        await self._run(sql, args)

    async def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement once per row of arguments."""
        for args in rows:
            await self._run(sql, args)


def batched_statements(units: Sequence[Sequence[Statement]]) -> list[tuple[str, list[Any]]]:
    """The statements of several units as (statement, rows) runs, one run per statement where
    that keeps every unit's own order (a token after the grant it refers to); otherwise each
    statement alone, in order."""
    order: dict[str, int] = {}
    for statements in units:
        for sql, _ in statements:
            order.setdefault(sql, len(order))
    runs: dict[str, list[Any]] = {sql: [] for sql in order}
    in_order = True
    for statements in units:
        last = -1
        for sql, args in statements:
            rank = order[sql]
            in_order = in_order and rank >= last
            last = rank
            runs[sql].append(args)
    if in_order:
        return list(runs.items())
    return [(sql, [args]) for statements in units for sql, args in statements]


class HeldUnit:
    """What one unit put in a group commit: the inserts it held back, its events, and the
    future it waits on (one per unit: a unit whose task is cancelled drops only its own, and
    its rows are committed all the same)."""

    __slots__ = ("events", "failure", "inserts", "waiter")

    def __init__(
        self, inserts: list[Statement], events: list[AuditEvent], waiter: asyncio.Future[None]
    ) -> None:
        self.inserts = inserts
        self.events = events
        self.waiter = waiter
        #: Set when the unit's own rows were refused at COMMIT time.
        self.failure: BaseException | None = None

    def settle(self, failure: BaseException | None) -> None:
        failure = self.failure or failure
        if self.waiter.done():
            return
        if failure is None:
            self.waiter.set_result(None)
        else:
            self.waiter.set_exception(failure)

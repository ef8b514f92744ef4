"""The three statement primitives every SQL mixin is written against; each database's
transaction class (``SQLiteTransaction``, ``PostgresTransaction``) implements them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["SqlStatements", "Statement", "batched_statements"]

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

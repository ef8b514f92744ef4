"""The three statement primitives every SQL mixin is written against; each database's
transaction class (``SQLiteTransaction``, ``PostgresTransaction``) implements them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["SqlStatements"]


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

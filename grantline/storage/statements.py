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

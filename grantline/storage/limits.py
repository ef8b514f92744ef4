"""SQL for rate limits and sign-in throttling, shared by SQLite and PostgreSQL.

``SqlLimits`` is a mixin of ``SqlTransaction``: it uses the same three primitives and the same
portable SQL (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``; ``CASE`` where the databases
spell the larger of two values differently). Two tables:

- ``rate_limits``: one GCRA theoretical arrival time (microseconds) per key. A row whose time
  has passed says nothing a missing row would not, so such rows are pruned as counts are
  written.
- ``sign_in_counters``: failed sign-ins per account or address (``count`` failures, the last
  at ``last_at``), and addresses a person signed in from (``count`` 0, ``last_at`` the sign-in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from grantline.storage.statements import SqlStatements

__all__ = ["LimitTransaction", "SqlLimits", "limits_of"]

# max(tat, now) in SQL both databases read alike (SQLite's max() is PostgreSQL's GREATEST()).
_FROM = "CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END"


class LimitTransaction(Protocol):
    async def rate_limit_tats(self, keys: Sequence[str]) -> dict[str, int]:
        """The stored arrival time of each key that has one."""

    async def rate_limit_add(self, key: str, hits: int, interval: int, now: int) -> int:
        """Counts ``hits`` requests already admitted; the key's new arrival time."""

    async def rate_limit_take(
        self, key: str, interval: int, burst: int, now: int
    ) -> tuple[bool, int]:
        """Admits one request if it fits, in one statement; (admitted, arrival time)."""

    async def prune_rate_limits(self, now: int) -> int:
        """Deletes keys whose arrival time has passed; how many."""

    async def sign_in_counters(self, keys: Sequence[str], now: int) -> dict[str, tuple[int, int]]:
        """(count, last_at) of each key that has an unexpired row at ``now``."""

    async def count_sign_in_failure(self, key: str, now: int, *, window: int, keep_for: int) -> int:
        """One more failure, or the first if the last was ``window`` seconds ago or more;
        the new count."""

    async def mark_sign_in(self, key: str, now: int, *, keep_for: int) -> None:
        """Records a successful sign-in under ``key`` (count 0, ``last_at`` now)."""

    async def prune_sign_in_counters(self, now: int) -> int: ...


def limits_of(tx: object) -> LimitTransaction:
    """The limit statements of a store transaction; every SQL transaction has them."""
    if not isinstance(tx, SqlLimits):
        raise TypeError(f"{type(tx).__name__} does not store rate limits")
    return tx


class SqlLimits(SqlStatements):
    """``LimitTransaction`` over the primitives ``SqlTransaction`` provides."""

    __slots__ = ()

    # -- rate limits ---------------------------------------------------------------------

    async def rate_limit_tats(self, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        marks = ", ".join("?" * len(keys))
        rows = await self._all(f"SELECT key, tat FROM rate_limits WHERE key IN ({marks})", keys)
        return {str(row[0]): int(row[1]) for row in rows}

    async def rate_limit_add(self, key: str, hits: int, interval: int, now: int) -> int:
        cost = hits * interval
        row = await self._one(
            "INSERT INTO rate_limits (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            f"SET tat = {_FROM} + ? RETURNING tat",
            (key, now + cost, now, now, cost),
        )
        return int(row[0])

    async def rate_limit_take(
        self, key: str, interval: int, burst: int, now: int
    ) -> tuple[bool, int]:
        # A new key always fits (interval <= burst); an existing one only if its arrival time
        # stays within burst of now. The WHERE makes a refusal change nothing.
        taken = await self._one(
            "INSERT INTO rate_limits (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            f"SET tat = {_FROM} + ? WHERE {_FROM} + ? <= ? RETURNING tat",
            (key, now + interval, now, now, interval, now, now, interval, now + burst),
        )
        if taken is not None:
            return True, int(taken[0])
        row = await self._one("SELECT tat FROM rate_limits WHERE key = ?", (key,))
        return False, int(row[0]) if row is not None else now

    async def prune_rate_limits(self, now: int) -> int:
        return await self._run("DELETE FROM rate_limits WHERE tat < ?", (now,))

    # -- sign-in throttling --------------------------------------------------------------

    async def sign_in_counters(self, keys: Sequence[str], now: int) -> dict[str, tuple[int, int]]:
        if not keys:
            return {}
        marks = ", ".join("?" * len(keys))
        rows = await self._all(
            "SELECT key, count, last_at FROM sign_in_counters "
            f"WHERE key IN ({marks}) AND expires_at >= ?",
            [*keys, now],
        )
        return {str(row[0]): (int(row[1]), int(row[2])) for row in rows}

    async def count_sign_in_failure(self, key: str, now: int, *, window: int, keep_for: int) -> int:
        # One statement, so concurrent failures on PostgreSQL cannot lose a count.
        row = await self._one(
            "INSERT INTO sign_in_counters (key, count, last_at, expires_at) VALUES (?, 1, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN sign_in_counters.last_at <= ? THEN 1 "
            "ELSE sign_in_counters.count + 1 END, last_at = ?, expires_at = ? RETURNING count",
            (key, now, now + keep_for, now - window, now, now + keep_for),
        )
        return int(row[0])

    async def mark_sign_in(self, key: str, now: int, *, keep_for: int) -> None:
        await self._run(
            "INSERT INTO sign_in_counters (key, count, last_at, expires_at) VALUES (?, 0, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET count = 0, last_at = ?, expires_at = ?",
            (key, now, now + keep_for, now, now + keep_for),
        )

    async def prune_sign_in_counters(self, now: int) -> int:
        return await self._run("DELETE FROM sign_in_counters WHERE expires_at < ?", (now,))

"""Where the processes' rate-limit counts meet: the server's database, or Redis.

Both run GCRA the same way (``grantline.ratelimit.gcra``): one arrival time per key, in
microseconds. The database keeps them in ``rate_limits`` (``grantline.storage.limits``); Redis
keeps one string per key that expires when its bucket is full again, updated by Lua scripts so
that each call is one atomic round trip.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from grantline.ratelimit.config import RateLimitSettings
from grantline.ratelimit.limiter import CounterStore, CountersUnavailable, RateLimiter
from grantline.storage import StorageUnavailable, Store
from grantline.storage.limits import limits_of

__all__ = ["DatabaseCounters", "RedisCounters", "counter_store", "rate_limiter_for"]

_DB_UNAVAILABLE = (StorageUnavailable, sqlite3.OperationalError)


class DatabaseCounters:
    """Counts in the server's own database: nothing else to run, one transaction per
    reconciliation."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def read(self, keys: Sequence[str]) -> dict[str, int]:
        try:
            async with self._store.reader() as tx:
                return await limits_of(tx).rate_limit_tats(keys)
        except _DB_UNAVAILABLE as exc:
            raise CountersUnavailable(str(exc)) from exc

    async def add(self, hits: Mapping[str, tuple[int, int]], now: int) -> dict[str, int]:
        try:
            async with self._store.transaction() as tx:
                limits = limits_of(tx)
                tats = {
                    key: await limits.rate_limit_add(key, count, interval, now)
                    for key, (count, interval) in hits.items()
                }
                if secrets.randbelow(32) == 0:
                    # Now and then, so the table stays small without a task of its own.
                    await limits.prune_rate_limits(now)
                return tats
        except _DB_UNAVAILABLE as exc:
            raise CountersUnavailable(str(exc)) from exc

    async def take(
        self, key: str, pending: int, interval: int, burst: int, now: int
    ) -> tuple[bool, int]:
        try:
            async with self._store.transaction() as tx:
                limits = limits_of(tx)
                if pending:
                    await limits.rate_limit_add(key, pending, interval, now)
                return await limits.rate_limit_take(key, interval, burst, now)
        except _DB_UNAVAILABLE as exc:
            raise CountersUnavailable(str(exc)) from exc

    async def close(self) -> None:
        """The store is the application's to close."""


# KEYS: the counters; ARGV: now, then (hits, interval) per key. Returns the new times.
_ADD = """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tat = tat + tonumber(ARGV[2 * i]) * tonumber(ARGV[2 * i + 1])
  redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
  out[i] = tat
end
return out
"""

# KEYS[1]: the counter; ARGV: now, pending, interval, burst. Returns {admitted, time}.
_TAKE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[2]) * interval
local admitted = 0
if tat + interval - now <= tonumber(ARGV[4]) then
  tat = tat + interval
  admitted = 1
end
if tat > now then
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return {admitted, tat}
"""


#: A Redis that cannot be reached or answers too slowly; the limiter decides locally meanwhile.
_REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisCounters:
    """Counts in Redis (``rate_limit_url``), for deployments that run one anyway. The client
    is made on first use, inside the event loop that uses it."""

    def __init__(self, url: str, key_prefix: str) -> None:
        self._url = url
        self._prefix = key_prefix
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    def _client(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(
                self._url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=30
            )
            self._scripts = {
                "add": self._redis.register_script(_ADD),
                "take": self._redis.register_script(_TAKE),
            }
        return self._redis

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[int]) -> Any:
        self._client()
        try:
            return await self._scripts[script](
                keys=[self._prefix + k for k in keys], args=list(args)
            )
        except _REDIS_UNAVAILABLE as exc:
            raise CountersUnavailable(str(exc) or type(exc).__name__) from exc

    async def read(self, keys: Sequence[str]) -> dict[str, int]:
        client = self._client()
        try:
            values = await client.mget([self._prefix + k for k in keys])
        except _REDIS_UNAVAILABLE as exc:
            raise CountersUnavailable(str(exc) or type(exc).__name__) from exc
        return {k: int(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def add(self, hits: Mapping[str, tuple[int, int]], now: int) -> dict[str, int]:
        keys = list(hits)
        args = [now]
        for key in keys:
            args.extend(hits[key])
        tats = await self._run("add", keys, args)
        return {k: int(t) for k, t in zip(keys, tats, strict=True)}

    async def take(
        self, key: str, pending: int, interval: int, burst: int, now: int
    ) -> tuple[bool, int]:
        admitted, tat = await self._run("take", [key], [now, pending, interval, burst])
        return bool(admitted), int(tat)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def counter_store(url: str | None, key_prefix: str, store: Store) -> CounterStore:
    """Redis when ``rate_limit_url`` is set, else the database."""
    if url is not None:
        return RedisCounters(url, key_prefix)
    return DatabaseCounters(store)


def rate_limiter_for(settings: RateLimitSettings, store: Store) -> RateLimiter:
    """The process's limiter for these settings, sharing counts through the database or
    Redis."""
    return RateLimiter(
        counter_store(settings.url, settings.key_prefix, store),
        sync_interval_ms=settings.sync_interval_ms,
    )

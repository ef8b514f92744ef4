"""Where counts meet: Redis (a real server) and the database's failure mapping. The SQL itself
is in ``tests/storage/test_limits.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest
from redis.asyncio import Redis

from grantline.ratelimit.config import Limit
from grantline.ratelimit.limiter import CountersUnavailable, RateLimiter
from grantline.ratelimit.stores import (
    DatabaseCounters,
    RedisCounters,
    counter_store,
)
from grantline.storage import StorageUnavailable, Store, Transaction
from tests.helpers import FrozenClock
from tests.integration.support import free_port

NOW_US = 1_700_000_000_000_000
IV = 20_000_000  # 3 per minute
BURST = 60_000_000


@pytest.fixture
async def counters(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisCounters]:
    counters = RedisCounters(redis_url, redis_prefix)
    yield counters
    await counters.close()


async def test_redis_counts_like_the_database(counters: RedisCounters) -> None:
    assert await counters.read(["k"]) == {}
    assert await counters.add({"k": (2, IV), "j": (1, IV)}, NOW_US) == {
        "k": NOW_US + 2 * IV,
        "j": NOW_US + IV,
    }
    assert await counters.take("k", 0, IV, BURST, NOW_US) == (True, NOW_US + 3 * IV)
    assert await counters.take("k", 0, IV, BURST, NOW_US) == (False, NOW_US + 3 * IV)
    # Pending counts go in before the decision, even when it is a refusal.
    assert await counters.take("j", 2, IV, BURST, NOW_US) == (False, NOW_US + 3 * IV)
    assert await counters.read(["k", "j", "none"]) == {"k": NOW_US + 3 * IV, "j": NOW_US + 3 * IV}


async def test_redis_keys_expire_when_their_bucket_is_full_again(
    counters: RedisCounters, redis_url: str, redis_prefix: str
) -> None:
    import time

    now = int(time.time() * 1_000_000)
    await counters.add({"k": (3, IV)}, now)
    client = Redis.from_url(redis_url)
    try:
        ttl_ms = await client.pttl(redis_prefix + "k")
        stored = await client.get(redis_prefix + "k")
    finally:
        await client.aclose()
    # 60 s until the bucket is full, plus a second's grace; never an immortal key.
    assert 59_000 < ttl_ms <= 61_000
    assert stored == str(now + 3 * IV).encode()


async def test_two_limiters_share_one_budget_through_redis(
    redis_url: str, redis_prefix: str, clock: FrozenClock
) -> None:
    a = RateLimiter(RedisCounters(redis_url, redis_prefix), clock=clock)
    b = RateLimiter(RedisCounters(redis_url, redis_prefix), clock=clock)
    limit = Limit(10, 3600)
    try:
        assert [(await a.hit("k", limit)).allowed for _ in range(10)] == [True] * 10
        refused = await b.hit("k", limit)
        assert not refused.allowed and refused.retry_after == 360
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_redis_is_unavailable_and_the_limiter_counts_alone(
    clock: FrozenClock,
) -> None:
    counters = RedisCounters(f"redis://127.0.0.1:{free_port()}/0", "x:")
    with pytest.raises(CountersUnavailable):
        await counters.read(["k"])
    with pytest.raises(CountersUnavailable):
        await counters.add({"k": (1, IV)}, NOW_US)
    limiter = RateLimiter(counters, clock=clock)
    limit = Limit(2, 60)
    assert [(await limiter.hit("k", limit)).allowed for _ in range(3)] == [True, True, False]
    await limiter.close()


class _UnavailableStore:
    """A store whose database is gone."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        raise StorageUnavailable("connection refused")

    reader = transaction

    async def ping(self) -> None:
        raise StorageUnavailable("connection refused")

    async def close(self) -> None:
        pass


async def test_an_unusable_database_is_unavailable_to_the_limiter() -> None:
    counters = DatabaseCounters(_UnavailableStore())
    with pytest.raises(CountersUnavailable):
        await counters.read(["k"])
    with pytest.raises(CountersUnavailable):
        await counters.add({"k": (1, IV)}, NOW_US)
    with pytest.raises(CountersUnavailable):
        await counters.take("k", 1, IV, BURST, NOW_US)


def test_redis_only_when_a_url_is_configured(store: Store) -> None:
    assert isinstance(counter_store(None, "p:", store), DatabaseCounters)
    assert isinstance(counter_store("redis://127.0.0.1:6379/0", "p:", store), RedisCounters)

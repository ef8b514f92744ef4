"""The SQL of rate limits and sign-in counts, on SQLite and PostgreSQL; and two limiters on
two connections (like two processes) sharing one budget through the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from grantline.ratelimit.config import Limit
from grantline.ratelimit.gcra import charge
from grantline.ratelimit.limiter import RateLimiter
from grantline.ratelimit.stores import DatabaseCounters
from grantline.storage import Store
from grantline.storage.limits import limits_of
from tests.helpers import FrozenClock

NOW_US = 1_700_000_000_000_000
IV = 20_000_000  # 3 per minute
BURST = 60_000_000


async def test_adding_counts_moves_the_arrival_time(store: Store) -> None:
    async with store.transaction() as tx:
        limits = limits_of(tx)
        assert await limits.rate_limit_add("k", 2, IV, NOW_US) == NOW_US + 2 * IV
        assert await limits.rate_limit_add("k", 1, IV, NOW_US) == NOW_US + 3 * IV
        # An arrival time in the past counts from now.
        later = NOW_US + 10 * BURST
        assert await limits.rate_limit_add("k", 1, IV, later) == later + IV
    async with store.reader() as tx:
        assert await limits_of(tx).rate_limit_tats(["k", "other"]) == {"k": later + IV}


async def test_taking_admits_until_the_burst_is_spent_and_a_refusal_changes_nothing(
    store: Store,
) -> None:
    for expected in (NOW_US + IV, NOW_US + 2 * IV, NOW_US + 3 * IV):
        async with store.transaction() as tx:
            assert await limits_of(tx).rate_limit_take("k", IV, BURST, NOW_US) == (True, expected)
    async with store.transaction() as tx:
        assert await limits_of(tx).rate_limit_take("k", IV, BURST, NOW_US) == (
            False,
            NOW_US + 3 * IV,
        )
    async with store.transaction() as tx:
        assert await limits_of(tx).rate_limit_take("k", IV, BURST, NOW_US + IV) == (
            True,
            NOW_US + 4 * IV,
        )


async def test_spent_keys_are_pruned(store: Store) -> None:
    async with store.transaction() as tx:
        limits = limits_of(tx)
        await limits.rate_limit_add("old", 1, IV, NOW_US)
        await limits.rate_limit_add("new", 1, IV, NOW_US + BURST)
        assert await limits.prune_rate_limits(NOW_US + IV + 1) == 1
        assert set(await limits.rate_limit_tats(["old", "new"])) == {"new"}


async def test_concurrent_takes_on_two_connections_never_overspend(
    open_backend: Callable[[], Store],
) -> None:
    stores: list[Store] = [open_backend(), open_backend()]

    async def take(store: Store) -> bool:
        async with store.transaction() as tx:
            taken, _ = await limits_of(tx).rate_limit_take("k", IV, BURST, NOW_US)
            return taken

    outcomes = await asyncio.gather(*(take(stores[i % 2]) for i in range(10)))
    assert outcomes.count(True) == 3


async def test_sign_in_failures_count_then_start_over_after_the_window(store: Store) -> None:
    now = 1_700_000_000
    async with store.transaction() as tx:
        limits = limits_of(tx)
        counts = [
            await limits.count_sign_in_failure("a", now + i, window=900, keep_for=900)
            for i in range(3)
        ]
        assert counts == [1, 2, 3]
        assert await limits.count_sign_in_failure("a", now + 902 + 2, window=900, keep_for=900) == 1
    async with store.reader() as tx:
        assert await limits_of(tx).sign_in_counters(["a", "b"], now + 904) == {"a": (1, now + 904)}


async def test_sign_in_marks_expire(store: Store) -> None:
    now = 1_700_000_000
    async with store.transaction() as tx:
        limits = limits_of(tx)
        await limits.mark_sign_in("known", now, keep_for=100)
    async with store.reader() as tx:
        limits = limits_of(tx)
        assert await limits.sign_in_counters(["known"], now + 100) == {"known": (0, now)}
        assert await limits.sign_in_counters(["known"], now + 101) == {}
    async with store.transaction() as tx:
        assert await limits_of(tx).prune_sign_in_counters(now + 101) == 1


async def test_two_limiters_on_two_connections_share_one_budget(
    open_backend: Callable[[], Store], clock: FrozenClock
) -> None:
    a_store: Store = open_backend()
    b_store: Store = open_backend()
    a = RateLimiter(DatabaseCounters(a_store), clock=clock)
    b = RateLimiter(DatabaseCounters(b_store), clock=clock)
    limit, key = Limit(20, 3600), "par:client:agent"
    try:
        # Far from the limit each counts locally; reconciling tells the database, and b learns
        # a's count from the answer to its own.
        assert [(await a.hit(key, limit)).allowed for _ in range(8)] == [True] * 8
        await a.flush()
        assert [(await b.hit(key, limit)).allowed for _ in range(8)] == [True] * 8
        await b.flush()
        async with a_store.reader() as tx:
            stored = await limits_of(tx).rate_limit_tats([key])
        assert stored == {key: charge(0, clock.now * 10**6, limit.interval_us, 16)}
        # b knows 16 are spent: two more locally, the last two through the database.
        assert [(await b.hit(key, limit)).allowed for _ in range(4)] == [True] * 4
        refused = await b.hit(key, limit)
        assert not refused.allowed and refused.retry_after == 180
        # a last heard of the key at its own reconciliation; once that is a second old it
        # reads the key again before deciding.
        clock.advance(2)
        refused = await a.hit(key, limit)
        assert not refused.allowed and refused.retry_after == 178
    finally:
        await a.close()
        await b.close()

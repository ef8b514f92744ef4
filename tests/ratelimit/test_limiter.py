"""The per-process limiter: local counting, reconciliation, exact last tokens, and what it
does when the shared store fails. The shared store here is an in-memory one that counts its
calls; the database and Redis are in ``tests/storage/test_limits.py`` and ``test_stores``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from grantline.ratelimit.config import Limit
from grantline.ratelimit.gcra import charge
from grantline.ratelimit.limiter import CountersUnavailable, Decision, RateLimiter
from tests.helpers import FrozenClock

LIMIT = Limit(100, 60)  # near the limit = fewer than 10 left


class MemoryCounters:
    """A ``CounterStore`` in a dict, shared by several limiters like the database would be."""

    def __init__(self) -> None:
        self.tats: dict[str, int] = {}
        self.calls: list[str] = []
        self.down = False
        self.closed = False

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.down:
            raise CountersUnavailable("down")

    async def read(self, keys: Sequence[str]) -> dict[str, int]:
        self._check("read")
        return {k: self.tats[k] for k in keys if k in self.tats}

    async def add(self, hits: Mapping[str, tuple[int, int]], now: int) -> dict[str, int]:
        self._check("add")
        for key, (count, interval) in hits.items():
            self.tats[key] = charge(self.tats.get(key, 0), now, interval, count)
        return {key: self.tats[key] for key in hits}

    async def take(
        self, key: str, pending: int, interval: int, burst: int, now: int
    ) -> tuple[bool, int]:
        self._check("take")
        tat = charge(self.tats.get(key, 0), now, interval, pending)
        if charge(tat, now, interval) - now <= burst:
            tat = charge(tat, now, interval)
            self.tats[key] = tat
            return True, tat
        self.tats[key] = tat
        return False, tat

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def counters() -> MemoryCounters:
    return MemoryCounters()


def limiter(counters: MemoryCounters | None, clock: FrozenClock, **kwargs: int) -> RateLimiter:
    return RateLimiter(counters, clock=clock, **kwargs)


async def hits(limiter: RateLimiter, n: int, key: str = "k", limit: Limit = LIMIT) -> list[bool]:
    return [(await limiter.hit(key, limit)).allowed for _ in range(n)]


async def test_far_from_the_limit_only_the_first_request_touches_the_shared_store(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    local = limiter(counters, clock)
    assert await hits(local, 50) == [True] * 50
    # One read to learn the key; the 50 requests are pending, not written.
    assert counters.calls == ["read"]
    await local.flush()
    assert counters.calls == ["read", "add"]
    assert counters.tats["k"] == charge(0, clock.now * 1_000_000, LIMIT.interval_us, 50)
    await local.close()


async def test_the_last_tokens_are_decided_by_the_shared_store(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    local = limiter(counters, clock)
    assert await hits(local, 90) == [True] * 90
    assert counters.calls == ["read"]
    # From here on fewer than 10 are left: every admission is a take, with the pending 90.
    assert await hits(local, 10) == [True] * 10
    assert counters.calls == ["read"] + ["take"] * 10
    refused = await local.hit("k", LIMIT)
    assert refused == Decision(False, 1)  # 60 s / 100 = 0.6 s, rounded up
    # The refusal was decided locally.
    assert counters.calls.count("take") == 10
    await local.close()


async def test_two_processes_share_one_budget_exactly_at_its_end(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    a, b = limiter(counters, clock), limiter(counters, clock)
    limit = Limit(10, 3600)
    assert await hits(a, 10, limit=limit) == [True] * 10
    # b never saw the key: it reads it, and a's last request was written through.
    refused = await b.hit("k", limit)
    assert not refused.allowed
    assert refused.retry_after == 360
    await a.close()
    await b.close()


async def test_far_from_the_limit_processes_learn_from_each_other_at_reconciliation(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    a, b = limiter(counters, clock), limiter(counters, clock)
    assert await hits(a, 40) == [True] * 40
    assert await hits(b, 40) == [True] * 40
    await a.flush()
    await b.flush()
    # b's reconciliation brought back a's 40: 80 spent, so the 11th more is near the limit.
    assert await hits(b, 10) == [True] * 10
    assert counters.calls[-1] == "add"
    assert await hits(b, 1) == [True]
    assert counters.calls[-1] == "take"
    await a.close()
    await b.close()


async def test_a_stale_key_is_read_again(counters: MemoryCounters, clock: FrozenClock) -> None:
    a, b = limiter(counters, clock), limiter(counters, clock)
    limit = Limit(10, 3600)
    assert await hits(b, 1, limit=limit) == [True]
    await b.flush()
    assert await hits(a, 9, limit=limit) == [True] * 9  # the last one written through
    # b's view is one second old: it still thinks 9 are left, and would say so.
    assert b.peek("k", limit).allowed
    clock.advance(2)
    assert not (await b.hit("k", limit)).allowed
    await a.close()
    await b.close()


async def test_peek_never_counts_and_never_asks(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    local = limiter(counters, clock)
    limit = Limit(2, 60)
    assert local.peek("k", limit).allowed  # unknown: nothing to say
    assert counters.calls == []
    assert await hits(local, 2, limit=limit) == [True, True]
    calls = list(counters.calls)
    assert local.peek("k", limit) == Decision(False, 30)
    assert local.peek("k", limit) == Decision(False, 30)
    assert counters.calls == calls
    clock.advance(30)
    assert local.peek("k", limit).allowed
    await local.close()


async def test_exact_mode_asks_the_shared_store_for_every_request(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    local = limiter(counters, clock, sync_interval_ms=0)
    assert await hits(local, 3) == [True] * 3
    assert counters.calls == ["read", "take", "take", "take"]
    await local.close()


async def test_a_failed_store_means_counting_locally_then_catching_up(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    local = limiter(counters, clock)
    limit = Limit(10, 3600)
    counters.down = True
    # Still limited, by this process alone; the store is not asked again while it is down.
    assert await hits(local, 11, limit=limit) == [True] * 10 + [False]
    assert counters.calls == ["read"]
    await local.flush()  # fails, and keeps the counts
    assert counters.tats == {}
    counters.down = False
    await local.flush()
    assert counters.tats["k"] == charge(0, clock.now * 1_000_000, limit.interval_us, 10)
    await local.close()


async def test_without_a_shared_store_the_process_counts_alone(clock: FrozenClock) -> None:
    local = limiter(None, clock)
    limit = Limit(3, 60)
    assert await hits(local, 4, limit=limit) == [True, True, True, False]
    clock.advance(20)
    assert await hits(local, 2, limit=limit) == [True, False]
    await local.close()


async def test_keys_are_bounded_per_process(counters: MemoryCounters, clock: FrozenClock) -> None:
    local = limiter(counters, clock, max_keys=3)
    for key in ("a", "b", "c", "d"):
        await local.hit(key, LIMIT)
    assert local.peek("a", Limit(1, 60)).allowed  # evicted: nothing known
    assert not local.peek("d", Limit(1, 60)).allowed
    await local.close()


async def test_close_sends_what_is_pending_and_closes_the_store(
    counters: MemoryCounters, clock: FrozenClock
) -> None:
    local = limiter(counters, clock)
    await hits(local, 5)
    await local.close()
    assert counters.calls[-1] == "add"
    assert counters.tats["k"] == charge(0, clock.now * 1_000_000, LIMIT.interval_us, 5)
    assert counters.closed


async def test_the_background_task_reconciles_by_itself(counters: MemoryCounters) -> None:
    # The one test on the real clock: it waits for the task, whatever the machine's speed.
    import asyncio

    local = RateLimiter(counters, sync_interval_ms=10)
    await hits(local, 5)
    for _ in range(500):
        if "add" in counters.calls:
            break
        await asyncio.sleep(0.01)
    assert counters.calls == ["read", "add"]
    await local.close()

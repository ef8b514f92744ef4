"""Rate limits shared by every process, cheap on the common path.

Each process keeps a GCRA arrival time per key (``grantline.ratelimit.gcra``) and decides on
its own; the shared store (the database or Redis, a ``CounterStore``) only reconciles them:

- A request far from its key's limit is admitted locally and counted in ``pending``; a
  background task sends every pending count in one round trip at most every
  ``sync_interval_ms`` (200 ms by default), and learns from the answer what the other
  processes spent. The database sees one transaction per interval per process, not one per
  request.
- A key this process has not seen, or not reconciled for a while (1 s, or five intervals), is
  read from the shared store first: a read, never a write.
- A request that would leave its key within a tenth of its limit (or its last token) is
  decided by the shared store itself, atomically, together with the key's pending count. So
  the last tokens of a budget are exact across processes, and only callers near their limit
  pay for a shared write.
- A refusal is decided locally. It is always justified: a local view can miss other
  processes' requests, never invent them.

What this trades: a process admits locally what it receives within one interval (at most nine
tenths of a budget) before the others learn of it, so with N processes a key can overshoot by
up to N - 1 times that; the surplus is paid back by later refusals (the arrival time carries
the debt). The processes' clocks must agree to well under a second (NTP).

When the shared store fails, each process goes on counting on its own for five seconds (and
keeps its pending counts for later): a rate limiter must not turn a Redis or database outage
into an outage of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from grantline.ratelimit.config import Limit
from grantline.ratelimit.gcra import admit, charge, remaining, retry_after

__all__ = ["ALLOWED", "CounterStore", "CountersUnavailable", "Decision", "RateLimiter"]

log = logging.getLogger("grantline.ratelimit")

#: How long a process decides alone after the shared store failed, in microseconds.
_OUTAGE_US = 5_000_000
#: Bound on one synchronous round trip to the shared store during a request.
_REQUEST_TIMEOUT = 1.0
#: Bound on one background reconciliation, and on the last one at shutdown.
_FLUSH_TIMEOUT = 5.0


class CountersUnavailable(RuntimeError):
    """The shared store cannot be used right now; the caller decides locally."""


class CounterStore(Protocol):
    """Where the processes' arrival times meet. Times and costs are integer microseconds."""

    async def read(self, keys: Sequence[str]) -> dict[str, int]:
        """The arrival time of each key that has one."""

    async def add(self, hits: Mapping[str, tuple[int, int]], now: int) -> dict[str, int]:
        """Counts ``(hits, interval)`` already admitted per key; the new arrival times."""

    async def take(
        self, key: str, pending: int, interval: int, burst: int, now: int
    ) -> tuple[bool, int]:
        """Counts ``pending`` admitted requests, then admits one more if it fits, atomically;
        (admitted, arrival time)."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    #: Whole seconds until a request would fit (0 when allowed).
    retry_after: int = 0


ALLOWED = Decision(True)


@dataclass(slots=True)
class _Bucket:
    #: This process's view of the arrival time: the shared one as last read, plus its own
    #: requests since.
    tat: int
    interval: int
    #: Requests admitted here that the shared store has not counted yet.
    pending: int = 0
    synced_at: int = 0


def _near_limit(limit: Limit) -> int:
    """Fewer tokens left than this and the shared store decides."""
    return max(1, limit.count // 10)


class RateLimiter:
    """One per process. ``counters`` None counts in this process only."""

    def __init__(
        self,
        counters: CounterStore | None = None,
        *,
        sync_interval_ms: int = 200,
        clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
    ) -> None:
        self._counters = counters
        self._clock = clock
        self._exact = sync_interval_ms == 0
        # Even in exact mode, counts kept through an outage are sent later.
        self._flush_every = (sync_interval_ms or 1000) / 1000
        self._stale_after = max(1_000_000, 5 * sync_interval_ms * 1000)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._dirty: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._down_until = 0

    def _now(self) -> int:
        return int(self._clock() * 1_000_000)

    def peek(self, key: str, limit: Limit) -> Decision:
        """Whether ``key`` is over ``limit`` as far as this process knows, without counting a
        request or asking the shared store."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return ALLOWED
        now = self._now()
        fits, _ = admit(bucket.tat, now, limit.interval_us, limit.burst_us)
        if fits:
            return ALLOWED
        return Decision(False, retry_after(bucket.tat, now, limit.interval_us, limit.burst_us))

    async def hit(self, key: str, limit: Limit) -> Decision:
        """Counts one request against ``key`` if it fits ``limit``."""
        now = self._now()
        interval, burst = limit.interval_us, limit.burst_us
        bucket = self._buckets.get(key)
        if bucket is None or now - bucket.synced_at > self._stale_after:
            bucket = await self._refresh(key, interval, now)
        else:
            self._buckets.move_to_end(key)
        fits, new_tat = admit(bucket.tat, now, interval, burst)
        if not fits:
            return Decision(False, retry_after(bucket.tat, now, interval, burst))
        counters = self._counters if now >= self._down_until else None
        near = self._exact or remaining(new_tat, now, interval, burst) < _near_limit(limit)
        if counters is not None and near:
            return await self._take(counters, key, bucket, limit, now)
        self._count_locally(key, bucket, new_tat)
        return ALLOWED

    def _count_locally(self, key: str, bucket: _Bucket, new_tat: int) -> None:
        bucket.tat = new_tat
        if self._counters is None:
            return
        bucket.pending += 1
        self._dirty.add(key)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _refresh(self, key: str, interval: int, now: int) -> _Bucket:
        shared = 0
        if self._counters is not None and now >= self._down_until:
            try:
                async with asyncio.timeout(_REQUEST_TIMEOUT):
                    shared = (await self._counters.read([key])).get(key, 0)
            except (CountersUnavailable, TimeoutError) as exc:
                self._went_down(now, exc)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(shared, interval, synced_at=now)
            self._evict()
        else:
            # The shared time lacks this process's pending requests; keep the larger view.
            seen = charge(shared, now, interval, bucket.pending) if bucket.pending else shared
            bucket.tat = max(bucket.tat, seen)
            bucket.synced_at = now
            self._buckets.move_to_end(key)
        return bucket

    async def _take(
        self, counters: CounterStore, key: str, bucket: _Bucket, limit: Limit, now: int
    ) -> Decision:
        interval, burst = limit.interval_us, limit.burst_us
        pending, bucket.pending = bucket.pending, 0
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                taken, tat = await counters.take(key, pending, interval, burst, now)
        except (CountersUnavailable, TimeoutError) as exc:
            self._went_down(now, exc)
            bucket.pending += pending
            fits, new_tat = admit(bucket.tat, now, interval, burst)
            if not fits:
                return Decision(False, retry_after(bucket.tat, now, interval, burst))
            self._count_locally(key, bucket, new_tat)
            return ALLOWED
        # Requests admitted here while the store answered are still pending on top of it.
        bucket.tat = charge(tat, now, interval, bucket.pending) if bucket.pending else tat
        bucket.synced_at = now
        if taken:
            return ALLOWED
        return Decision(False, retry_after(tat, now, interval, burst))

    def _evict(self) -> None:
        while len(self._buckets) > self._max_keys:
            # The least recently used key; its pending count, if any, is lost (an undercount
            # that only a flood of distinct keys within one interval can cause).
            key, _ = self._buckets.popitem(last=False)
            self._dirty.discard(key)

    def _went_down(self, now: int, exc: BaseException) -> None:
        if now >= self._down_until:
            log.warning(
                "rate-limit counters are not shared for %d s: %s",
                _OUTAGE_US // 1_000_000,
                str(exc) or type(exc).__name__,
            )
        self._down_until = now + _OUTAGE_US

    async def flush(self) -> None:
        """Sends every pending count to the shared store and takes back the shared times."""
        if self._counters is None or not self._dirty:
            return
        now = self._now()
        batch: dict[str, tuple[int, int]] = {}
        for key in self._dirty:
            bucket = self._buckets.get(key)
            if bucket is not None and bucket.pending:
                batch[key] = (bucket.pending, bucket.interval)
                bucket.pending = 0
        self._dirty.clear()
        if not batch:
            return
        try:
            async with asyncio.timeout(_FLUSH_TIMEOUT):
                tats = await self._counters.add(batch, now)
        except (CountersUnavailable, TimeoutError) as exc:
            self._went_down(now, exc)
            for key, (hits, _) in batch.items():
                bucket = self._buckets.get(key)
                if bucket is not None:
                    bucket.pending += hits
                    self._dirty.add(key)
            return
        self._down_until = 0
        for key, tat in tats.items():
            bucket = self._buckets.get(key)
            if bucket is not None:
                pending = bucket.pending
                bucket.tat = charge(tat, now, bucket.interval, pending) if pending else tat
                bucket.synced_at = now

    async def _flush_loop(self) -> None:
        try:
            while self._dirty:
                await asyncio.sleep(self._flush_every)
                try:
                    await self.flush()
                except Exception:
                    # A background task's error would otherwise surface only when it is
                    # collected; log it and keep counting.
                    log.exception("rate-limit counters could not be reconciled")
        finally:
            self._flusher = None

    async def close(self) -> None:
        """Stops the background task, sends what is pending, closes the shared store."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        try:
            await self.flush()
        finally:
            if self._counters is not None:
                await self._counters.close()

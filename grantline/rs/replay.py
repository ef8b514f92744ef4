"""Remembering DPoP proofs already used (RFC 9449 11.1), in bounded memory.

A proof is acceptable for a window around its ``iat``, so it is remembered until that window
has passed. When the cache is full of proofs still inside their window, the oldest is
forgotten and every proof issued no later than it is refused from then on: the cache can no
longer tell whether such a proof was seen, and failing closed costs an honest client one
retry with a fresh proof, while failing open would let a replay through.

The cache is per process: several processes serving one resource need a shared store (or
sticky routing) to refuse a proof replayed against a sibling.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["ProofReplayCache"]


class ProofReplayCache:
    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        #: (jkt, jti) -> (iat, expires_at), in insertion order.
        self._seen: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()
        #: Proofs with iat at or below this were possibly forgotten: refused.
        self._floor: int | None = None

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, jkt: str, jti: str, *, iat: int, expires_at: int, now: int) -> bool:
        """Record the proof; False when it was seen before (or may have been)."""
        key = (jkt, jti)
        seen = self._seen.get(key)
        if seen is not None and seen[1] > now:
            return False
        if self._floor is not None and iat <= self._floor:
            return False
        self._purge(now)
        while len(self._seen) >= self._capacity:
            _, (evicted_iat, evicted_expiry) = self._seen.popitem(last=False)
            if evicted_expiry > now:
                floor = self._floor
                self._floor = evicted_iat if floor is None else max(floor, evicted_iat)
        self._seen[key] = (iat, expires_at)
        self._seen.move_to_end(key)
        return True

    def _purge(self, now: int) -> None:
        # Insertion order is close to expiry order; an entry kept behind a longer-lived one
        # only waits for it, and the capacity bounds both.
        while self._seen:
            key, (_, expires_at) = next(iter(self._seen.items()))
            if expires_at > now:
                return
            del self._seen[key]

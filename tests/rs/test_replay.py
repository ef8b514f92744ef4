"""The DPoP replay cache: each proof once, bounded memory, and closed rather than open when
it has had to forget."""

from __future__ import annotations

import pytest

from grantline.rs.replay import ProofReplayCache


def test_a_proof_is_accepted_once() -> None:
    cache = ProofReplayCache()
    assert cache.first_use("k1", "j1", iat=100, expires_at=401, now=100)
    assert not cache.first_use("k1", "j1", iat=100, expires_at=401, now=200)
    # The same jti under another key is another proof (RFC 9449 11.1).
    assert cache.first_use("k2", "j1", iat=100, expires_at=401, now=200)


def test_expired_entries_are_forgotten() -> None:
    cache = ProofReplayCache()
    for n in range(10):
        cache.first_use("k", f"j{n}", iat=100, expires_at=401, now=100)
    cache.first_use("k", "late", iat=500, expires_at=801, now=500)
    assert len(cache) == 1


def test_a_full_cache_forgets_the_oldest_and_refuses_what_it_can_no_longer_tell() -> None:
    cache = ProofReplayCache(capacity=3)
    for n in range(3):
        assert cache.first_use("k", f"j{n}", iat=100 + n, expires_at=401 + n, now=110)
    assert cache.first_use("k", "j3", iat=110, expires_at=411, now=110)
    assert len(cache) == 3
    # j0 was forgotten while still replayable: replaying it, or any proof as old, is refused.
    assert not cache.first_use("k", "j0", iat=100, expires_at=401, now=111)
    assert not cache.first_use("k", "never-seen", iat=99, expires_at=400, now=111)
    assert cache.first_use("k", "fresh", iat=111, expires_at=412, now=111)


def test_the_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ProofReplayCache(0)

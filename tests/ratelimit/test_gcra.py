"""GCRA arithmetic: a burst of ``count``, then one request per interval."""

from __future__ import annotations

from grantline.ratelimit.config import Limit
from grantline.ratelimit.gcra import admit, charge, remaining, retry_after

LIMIT = Limit(3, 60)  # a request every 20 s, three at once
IV, BURST = LIMIT.interval_us, LIMIT.burst_us
NOW = 1_700_000_000_000_000


def test_a_full_bucket_admits_count_requests_at_once_and_no_more() -> None:
    tat = 0
    for expected_left in (2, 1, 0):
        fits, tat = admit(tat, NOW, IV, BURST)
        assert fits
        assert remaining(tat, NOW, IV, BURST) == expected_left
    fits, refused_tat = admit(tat, NOW, IV, BURST)
    assert not fits
    assert refused_tat > NOW + BURST
    assert retry_after(tat, NOW, IV, BURST) == 20


def test_one_token_comes_back_per_interval() -> None:
    tat = charge(0, NOW, IV, 3)
    assert not admit(tat, NOW + IV - 1, IV, BURST)[0]
    assert admit(tat, NOW + IV, IV, BURST)[0]
    assert retry_after(tat, NOW + IV - 1_500_000, IV, BURST) == 2  # 1.5 s rounds up


def test_an_idle_key_forgets_its_past() -> None:
    # An arrival time long gone counts from now, not from then.
    assert charge(NOW - 10 * BURST, NOW, IV) == NOW + IV
    assert remaining(NOW - 10 * BURST, NOW, IV, BURST) == 3


def test_counts_added_in_one_go_equal_counts_added_one_by_one() -> None:
    one_by_one = 0
    for _ in range(5):
        one_by_one = charge(one_by_one, NOW, IV)
    assert charge(0, NOW, IV, 5) == one_by_one


def test_a_refusal_always_says_to_wait_at_least_a_second() -> None:
    assert retry_after(NOW + BURST, NOW + BURST, IV, BURST) >= 1

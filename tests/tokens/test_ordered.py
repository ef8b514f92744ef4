"""Refresh tokens led by their issue time, stored under that time and a keyed digest."""

from __future__ import annotations

import time

from grantline.tokens.digest import Digester, new_secret
from grantline.tokens.ordered import TIME_DIGITS, new_refresh_token, refresh_token_id

DIGESTER = Digester(b"k" * 32)


def test_a_refresh_token_is_its_issue_time_then_256_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    token = new_refresh_token()
    after = time.time_ns() // 1_000_000
    assert before <= int(token[:TIME_DIGITS], 16) <= after
    assert len(token[TIME_DIGITS:]) == 43  # 256 bits, base64url
    assert token != new_refresh_token()


def test_stored_ids_keep_the_time_in_clear_and_only_a_digest_of_the_token() -> None:
    token = new_refresh_token()
    stored = refresh_token_id(DIGESTER, token)
    assert stored == token[:TIME_DIGITS] + DIGESTER.digest("refresh_token", token)
    assert token[TIME_DIGITS:] not in stored


def test_stored_ids_sort_by_issue_time() -> None:
    first = new_refresh_token()
    time.sleep(0.002)
    second = new_refresh_token()
    assert refresh_token_id(DIGESTER, first) < refresh_token_id(DIGESTER, second)


def test_changing_the_time_part_changes_the_digest_too() -> None:
    token = new_refresh_token()
    forged = "0" * TIME_DIGITS + token[TIME_DIGITS:]
    assert (
        refresh_token_id(DIGESTER, forged)[TIME_DIGITS:]
        != refresh_token_id(DIGESTER, token)[TIME_DIGITS:]
    )


def test_a_token_from_before_the_time_part_keeps_its_plain_digest() -> None:
    old = new_secret()
    assert refresh_token_id(DIGESTER, old) == DIGESTER.digest("refresh_token", old)
    # The random part of a new token alone is not the token.
    token = new_refresh_token()
    assert refresh_token_id(DIGESTER, token[TIME_DIGITS:]) != refresh_token_id(DIGESTER, token)

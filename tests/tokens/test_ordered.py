"""Refresh tokens and jtis led by their issue time; tokens stored under it and a keyed digest."""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest

from grantline.tokens.digest import Digester, new_secret
from grantline.tokens.ordered import (
    TIME_DIGITS,
    access_token_id,
    new_jti,
    new_refresh_token,
    refresh_token_id,
)

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


def jwt_with(claims: object) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJFUzI1NiJ9.{payload}.c2lnbmF0dXJl"


def test_a_jti_is_its_issue_time_then_128_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    jti = new_jti()
    assert before <= int(jti[:TIME_DIGITS], 16) <= time.time_ns() // 1_000_000
    assert len(jti[TIME_DIGITS:]) == 22
    assert jti != new_jti()


def test_an_access_token_is_stored_under_its_jti_time_and_a_digest_of_the_whole_token() -> None:
    jti = new_jti()
    token = jwt_with({"jti": jti, "sub": "alice"})
    assert access_token_id(DIGESTER, token) == jti[:TIME_DIGITS] + DIGESTER.digest(
        "access_token", token
    )


def test_changing_the_jti_of_an_access_token_changes_its_digest_too() -> None:
    jti = new_jti()
    forged_jti = "0" * TIME_DIGITS + jti[TIME_DIGITS:]
    genuine = access_token_id(DIGESTER, jwt_with({"jti": jti}))
    forged = access_token_id(DIGESTER, jwt_with({"jti": forged_jti}))
    assert forged[TIME_DIGITS:] != genuine[TIME_DIGITS:]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(jwt_with({"jti": secrets.token_urlsafe(16)}), id="jti-before-time-part"),
        pytest.param(jwt_with({"sub": "alice"}), id="no-jti"),
        pytest.param(jwt_with({"jti": 7}), id="jti-not-a-string"),
        pytest.param(jwt_with(["jti"]), id="claims-not-an-object"),
        pytest.param("a.%%%.b", id="payload-not-base64"),
        pytest.param("a.bm90IGpzb24.b", id="payload-not-json"),
        pytest.param("a.b", id="two-parts"),
        pytest.param(new_refresh_token(), id="a-refresh-token"),
        pytest.param("", id="empty"),
    ],
)
def test_other_values_are_looked_up_by_their_plain_digest(value: str) -> None:
    assert access_token_id(DIGESTER, value) == DIGESTER.digest("access_token", value)

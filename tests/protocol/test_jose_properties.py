"""Properties of reading and verifying compact JWS from clients: every failure is a
``JoseFailure`` (which callers turn into their RFC's error), never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.protocol.jose import (
    CLIENT_SIGNING_ALGS,
    MAX_JSON_DEPTH,
    JoseFailure,
    exceeds_depth,
    number,
    public_key_from_jwk,
    read_header,
    unverified_payload,
    verify_compact,
)
from tests.jose_helpers import b64url, sign
from tests.strategies import (
    PROPERTY,
    SIGNING_KEY,
    compact_tokens,
    json_values,
    never_crashes,
    signed_tokens,
)


@PROPERTY
@given(st.one_of(compact_tokens(), signed_tokens()))
def test_any_token_has_a_header_object_or_fails_cleanly(token: str) -> None:
    header = never_crashes(lambda: read_header(token), JoseFailure)
    assert header is None or isinstance(header, dict)
    never_crashes(lambda: unverified_payload(token), JoseFailure)


@PROPERTY
@given(st.one_of(compact_tokens(), signed_tokens()))
def test_any_token_verifies_or_fails_cleanly(token: str) -> None:
    verified = never_crashes(
        lambda: verify_compact(token, SIGNING_KEY, CLIENT_SIGNING_ALGS), JoseFailure
    )
    if verified is not None:
        header, claims = verified
        assert header["alg"] == "ES256"
        assert isinstance(claims, dict)
        assert not exceeds_depth(claims, MAX_JSON_DEPTH)


@PROPERTY
@given(json_values())
def test_any_jwk_is_a_public_key_or_fails_cleanly(jwk: object) -> None:
    never_crashes(lambda: public_key_from_jwk(jwk), JoseFailure)


@PROPERTY
@given(st.dictionaries(st.sampled_from(["exp", "iat", "nbf"]), json_values()))
def test_numeric_dates_are_integers_or_fail_cleanly(claims: dict[str, object]) -> None:
    value = never_crashes(lambda: number(claims, "exp"), JoseFailure)
    assert value is None or isinstance(value, int)


@PROPERTY
@given(st.integers(0, 60))
def test_depth_is_measured_exactly(levels: int) -> None:
    value: object = 1
    for _ in range(levels):
        value = [value]
    assert exceeds_depth(value, MAX_JSON_DEPTH) == (levels > MAX_JSON_DEPTH)


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 5000])
def test_a_signed_payload_nested_too_deeply_is_refused(levels: int) -> None:
    payload = b'{"x": ' + b"[" * levels + b"]" * levels + b"}"
    token = sign(SIGNING_KEY, payload)
    with pytest.raises(JoseFailure, match="nested too deeply"):
        verify_compact(token, SIGNING_KEY, CLIENT_SIGNING_ALGS)


def test_a_header_nested_too_deeply_is_refused() -> None:
    header = b'{"alg": "ES256", "x": ' + b"[" * 1500 + b"]" * 1500 + b"}"
    with pytest.raises(JoseFailure, match="nested too deeply"):
        read_header(f"{b64url(header)}.e30.c2ln")

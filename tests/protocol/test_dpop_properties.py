"""Properties of checking DPoP proofs (RFC 9449 4.3) against hostile proofs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidDpopProof
from grantline.protocol.dpop import (
    Proof,
    access_token_hash,
    check_proof,
    nonce_for,
    nonce_valid,
    normalize_htu,
)
from tests.jose_helpers import TOKEN_URL, dpop_proof, ec_key
from tests.strategies import PROPERTY, compact_tokens, hostile_text, signed_tokens, uri_like

NOW = 1_700_000_000
SECRET = b"s" * 32
DEEP: object = []
for _ in range(30):
    DEEP = [DEEP]


@PROPERTY
@given(st.one_of(compact_tokens(), signed_tokens()), st.one_of(st.none(), hostile_text(40)))
def test_any_proof_is_a_proof_or_invalid_dpop_proof(token: str, access_token: str | None) -> None:
    try:
        proof = check_proof(
            token, method="POST", url=TOKEN_URL, now=NOW, window=300, access_token=access_token
        )
    except InvalidDpopProof as exc:
        assert exc.http_status == 400
        return
    assert isinstance(proof, Proof)


@PROPERTY
@given(uri_like())
def test_any_htu_normalizes_or_is_invalid_dpop_proof(url: str) -> None:
    try:
        normalized = normalize_htu(url)
    except InvalidDpopProof:
        return
    assert "?" not in normalized and "#" not in normalized


@PROPERTY
@given(st.one_of(st.none(), hostile_text(40)))
def test_any_nonce_is_just_valid_or_not(nonce: str | None) -> None:
    assert nonce_valid(SECRET, nonce, NOW) is False
    assert nonce_valid(SECRET, nonce_for(SECRET, NOW), NOW) is True


@PROPERTY
@given(hostile_text(40))
def test_any_access_token_has_a_hash(access_token: str) -> None:
    assert len(access_token_hash(access_token)) == 43


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({"htu": "http://["}, "htu", id="unbalanced-bracket-in-htu"),
        pytest.param({"jti": "a\x00b"}, "jti", id="nul-in-jti"),
        pytest.param({"x": DEEP}, "nested", id="deep"),
    ],
)
def test_proofs_that_once_crashed_are_invalid_dpop_proof(
    claims: dict[str, Any], reason: str
) -> None:
    token = dpop_proof(ec_key(), NOW, **claims)
    with pytest.raises(InvalidDpopProof, match=reason):
        check_proof(token, method="POST", url=TOKEN_URL, now=NOW, window=300)

"""Reading the token and proof off the request headers (RFC 6750 2.1, RFC 9449 7)."""

from __future__ import annotations

import pytest

from grantline.rs.credentials import MAX_TOKEN_LENGTH, Presented, presented_credentials
from grantline.rs.errors import InvalidDpopProof, InvalidRequest, MissingToken


def test_bearer_and_dpop_are_read() -> None:
    assert presented_credentials(["Bearer abc.def-_~+/="], []) == Presented(
        "Bearer", "abc.def-_~+/=", None
    )
    assert presented_credentials(["dpop  abc "], [" proof "]) == Presented("DPoP", "abc", "proof")


def test_a_proof_beside_a_bearer_token_is_not_read() -> None:
    assert presented_credentials(["Bearer abc"], ["proof"]).proof is None


@pytest.mark.parametrize("value", ["Basic abc", "Token abc", "Bearer\tabc", "abc"])
def test_other_schemes_are_no_credentials(value: str) -> None:
    with pytest.raises(MissingToken):
        presented_credentials([value], [])


@pytest.mark.parametrize("token", ["", "a b", "a,b", "é", "=abc", "x" * (MAX_TOKEN_LENGTH + 1)])
def test_a_malformed_token_is_invalid_request(token: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        presented_credentials([f"Bearer {token}"], [])
    assert caught.value.status_code == 400


def test_the_dpop_scheme_needs_exactly_one_proof() -> None:
    with pytest.raises(InvalidDpopProof):
        presented_credentials(["DPoP abc"], [])
    with pytest.raises(InvalidDpopProof):
        presented_credentials(["DPoP abc"], ["  "])
    with pytest.raises(InvalidRequest):
        presented_credentials(["DPoP abc"], ["p1", "p2"])

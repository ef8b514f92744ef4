from __future__ import annotations

import pytest

from grantline.errors import InvalidGrant, InvalidRequest
from grantline.protocol import pkce

# RFC 7636 appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_rfc7636_appendix_b() -> None:
    assert pkce.s256_challenge(VERIFIER) == CHALLENGE


def test_valid_challenge_is_accepted() -> None:
    assert pkce.validate_challenge(CHALLENGE, "S256") == (CHALLENGE, "S256")


@pytest.mark.parametrize(
    ("challenge", "method", "message"),
    [
        pytest.param(None, "S256", "code_challenge is required", id="missing-challenge"),
        pytest.param(CHALLENGE, None, "code_challenge_method is required", id="missing-method"),
        pytest.param(CHALLENGE, "plain", "must be S256", id="plain"),
        pytest.param(CHALLENGE, "s256", "must be S256", id="lowercase-method"),
        pytest.param("short", "S256", "43 characters", id="short-challenge"),
        pytest.param(CHALLENGE[:-1] + "=", "S256", "43 characters", id="padding"),
    ],
)
def test_bad_challenges_are_invalid_request(
    challenge: str | None, method: str | None, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        pkce.validate_challenge(challenge, method)


def test_verify_accepts_the_matching_verifier() -> None:
    pkce.verify(VERIFIER, CHALLENGE)


def test_verify_refuses_a_wrong_verifier() -> None:
    with pytest.raises(InvalidGrant, match="does not match"):
        pkce.verify("x" * 43, CHALLENGE)


def test_verify_refuses_a_malformed_verifier() -> None:
    with pytest.raises(InvalidGrant, match="malformed"):
        pkce.verify("too-short", CHALLENGE)


def test_verify_requires_a_verifier() -> None:
    with pytest.raises(InvalidRequest, match="code_verifier is required"):
        pkce.verify(None, CHALLENGE)

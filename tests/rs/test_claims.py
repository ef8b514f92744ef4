"""The checks every token passes, whether it came as a JWT or from introspection."""

from __future__ import annotations

from typing import Any

import pytest

from grantline.rs.claims import token_from_claims
from grantline.rs.errors import InvalidToken

ISSUER = "https://as.example"
RESOURCE = "https://api.example"
NOW = 1_700_000_000


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": "j",
        "sub": "s",
        "client_id": "c",
    }
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def check(jwt: bool, **overrides: Any) -> Any:
    return token_from_claims(
        claims(**overrides), issuer=ISSUER, resource=RESOURCE, now=NOW, leeway=30, jwt=jwt
    )


def test_an_introspection_answer_may_leave_out_iss_and_iat_a_jwt_may_not() -> None:
    assert check(False, iss=None, iat=None).jti == "j"
    with pytest.raises(InvalidToken, match="another issuer"):
        check(True, iss=None)
    with pytest.raises(InvalidToken, match="no iat"):
        check(True, iat=None)


def test_an_introspection_answer_naming_another_issuer_is_refused() -> None:
    with pytest.raises(InvalidToken, match="another issuer"):
        check(False, iss="https://evil.example")


@pytest.mark.parametrize("exp", [NOW - 30, NOW - 31, True, float("nan")])
def test_expiry_is_checked_with_the_leeway_only(exp: Any) -> None:
    with pytest.raises(InvalidToken):
        check(True, exp=exp)


def test_only_a_jkt_confirmation_is_understood() -> None:
    assert check(True, cnf={"jkt": "abc"}).jkt == "abc"
    refused: list[Any] = [{"jkt": "abc", "x5t#S256": "def"}, {"jwk": {}}, "abc", {"jkt": 1}]
    for cnf in refused:
        with pytest.raises(InvalidToken, match="cnf"):
            check(True, cnf=cnf)

"""Properties of checking private_key_jwt assertion claims (RFC 7523 3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidClient
from grantline.protocol.client_assertion import check_assertion_claims
from tests.strategies import PROPERTY, json_values

NOW = 1_700_000_000
ISSUER = "https://as.example"

_CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.one_of(st.just("agent"), json_values(4)),
        "sub": st.one_of(st.just("agent"), json_values(4)),
        "aud": st.one_of(st.just(ISSUER), st.just([ISSUER, 1]), json_values(4)),
        "exp": st.one_of(st.integers(NOW - 10, NOW + 7200), json_values(2)),
        "nbf": json_values(2),
        "iat": st.one_of(st.integers(NOW - 10, NOW + 100), json_values(2)),
        "jti": st.one_of(st.text(max_size=300), json_values(2)),
    },
)


@PROPERTY
@given(_CLAIMS)
def test_any_claims_are_accepted_in_full_or_invalid_client(claims: dict[str, object]) -> None:
    try:
        jti, exp = check_assertion_claims(claims, "agent", {ISSUER}, NOW, 3600)
    except InvalidClient as exc:
        assert exc.http_status == 401
        return
    assert claims["iss"] == claims["sub"] == "agent"
    assert NOW < exp <= NOW + 3600
    assert jti == claims["jti"] and 0 < len(jti) <= 256


def test_a_jti_with_a_nul_is_refused() -> None:
    claims = {"iss": "agent", "sub": "agent", "aud": ISSUER, "exp": NOW + 60, "jti": "a\x00"}
    with pytest.raises(InvalidClient, match="jti"):
        check_assertion_claims(claims, "agent", {ISSUER}, NOW, 3600)

"""Properties of unpacking signed request objects (RFC 9101)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidRequestObject
from grantline.protocol.params import is_clean_value
from grantline.protocol.request_object import request_object_params
from tests.strategies import PROPERTY, json_values

NOW = 1_700_000_000
ISSUER = "https://as.example"

_HEADER = st.dictionaries(
    st.sampled_from(["typ", "alg", "kid"]),
    st.one_of(st.sampled_from(["oauth-authz-req+jwt", "JWT"]), json_values(3)),
)
_CLAIMS = st.fixed_dictionaries(
    {
        "iss": st.one_of(st.just("agent"), json_values(2)),
        "aud": st.one_of(st.just(ISSUER), json_values(2)),
        "exp": st.one_of(st.integers(NOW - 10, NOW + 7200), json_values(2)),
    },
    optional={
        "nbf": json_values(2),
        "iat": json_values(2),
        "jti": json_values(2),
        "client_id": st.one_of(st.just("agent"), json_values(2)),
        "scope": json_values(2),
        "resource": json_values(3),
        "authorization_details": json_values(6),
        "request_uri": json_values(1),
        "state": json_values(2),
    },
)


@PROPERTY
@given(_HEADER, _CLAIMS)
def test_any_object_is_clean_parameters_or_invalid_request_object(
    header: dict[str, object], claims: dict[str, object]
) -> None:
    try:
        params, _, exp = request_object_params(
            header, claims, client_id="agent", issuer=ISSUER, now=NOW, max_lifetime=3600
        )
    except InvalidRequestObject as exc:
        assert exc.http_status == 400
        return
    assert params["client_id"] == "agent"
    assert NOW < exp <= NOW + 3600
    for name, value in params.items():
        assert isinstance(value, str)
        if name != "authorization_details":
            assert is_clean_value(value.replace("\x1f", "") if name == "resource" else value)


def test_a_jti_with_a_control_character_is_refused() -> None:
    claims = {"iss": "agent", "aud": ISSUER, "exp": NOW + 60, "jti": "a\x00"}
    with pytest.raises(InvalidRequestObject, match="jti"):
        request_object_params(
            {}, claims, client_id="agent", issuer=ISSUER, now=NOW, max_lifetime=60
        )

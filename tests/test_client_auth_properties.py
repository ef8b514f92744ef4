"""Properties of working out the presented client credentials (RFC 6749 2.3, RFC 7523)."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from joserfc.jwk import KeySet

from grantline.client_auth import PresentedCredentials, present_credentials, verify_assertion
from grantline.errors import InvalidClient, OAuthError
from grantline.protocol.client_assertion import JWT_BEARER
from grantline.protocol.params import is_clean_value
from tests.jose_helpers import b64url
from tests.strategies import (
    PROPERTY,
    SIGNING_KEY,
    compact_tokens,
    hostile_text,
    signed_tokens,
)

NOW = 1_700_000_000
ISSUER = "https://as.example"


def _storable(value: str) -> bool:
    return is_clean_value(value) and not any("\ud800" <= ch <= "\udfff" for ch in value)


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode("ascii")


_AUTHORIZATION = st.one_of(
    st.none(),
    hostile_text(40).map(lambda s: s.encode("utf-8", "surrogatepass").decode("latin-1")),
    hostile_text(40).map(lambda s: "Basic " + s),
    st.binary(max_size=40).map(_basic),
    hostile_text(40).map(lambda s: _basic(s.encode("utf-8", "surrogatepass"))),
)
_PARAMS = st.dictionaries(
    st.sampled_from(
        ["client_id", "client_secret", "client_assertion", "client_assertion_type", "x"]
    ),
    st.one_of(hostile_text(40), compact_tokens(), st.just(JWT_BEARER)),
    max_size=4,
).map(
    # What parse_params can hand over: no empty values, nothing but clean, storable text.
    lambda params: {k: v for k, v in params.items() if v and _storable(v)}
)


@PROPERTY
@given(_AUTHORIZATION, _PARAMS)
@example(_basic(b"a%00:b"), {})
@example("Basic \xe9\xe9\xe9\xe9", {})
@example(None, {"client_assertion_type": JWT_BEARER, "client_assertion": "e30." + "W" * 40 + ".x"})
def test_any_presentation_is_credentials_or_an_oauth_error(
    authorization: str | None, params: dict[str, str]
) -> None:
    try:
        presented = present_credentials(authorization, params)
    except OAuthError as exc:
        assert exc.error in ("invalid_client", "invalid_request")
        return
    assert isinstance(presented, PresentedCredentials)
    # Whatever names the client is looked up in the database before anything is verified.
    assert presented.client_id and _storable(presented.client_id)


@PROPERTY
@given(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))),
)
def test_basic_credentials_round_trip_appendix_b(client_id: str, secret: str) -> None:
    # RFC 6749 appendix B: form-encode each part, join with ":", then base64.
    header = _basic(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode("ascii"))
    presented = present_credentials(header, {})
    assert (presented.client_id, presented.secret) == (client_id, secret)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic " + "é" * 8, id="non-ascii-header"),
        pytest.param(_basic(b"agent%00:secret"), id="nul-in-client-id"),
        pytest.param(_basic(b"agent%ff:secret"), id="invalid-utf8-escape"),
        pytest.param(_basic(b"agent:se%0Acret%01"), id="control-in-secret"),
    ],
)
def test_malformed_basic_credentials_are_invalid_client(authorization: str) -> None:
    with pytest.raises(InvalidClient) as refused:
        present_credentials(authorization, {})
    assert refused.value.http_status == 401
    assert refused.value.description == "Malformed Basic credentials."


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[" * 5000 + b"]" * 5000, id="deeply-nested"),
        pytest.param(b'{"sub": "a\\u0000b"}', id="nul-in-sub"),
        pytest.param(b'{"sub": "\\ud800"}', id="lone-surrogate-sub"),
    ],
)
def test_assertion_subjects_that_cannot_be_looked_up_are_invalid_client(payload: bytes) -> None:
    form = {"client_assertion_type": JWT_BEARER, "client_assertion": f"e30.{b64url(payload)}.x"}
    with pytest.raises(InvalidClient) as refused:
        present_credentials(None, form)
    assert refused.value.http_status == 401


@PROPERTY
@given(st.one_of(compact_tokens(), signed_tokens()))
def test_any_assertion_is_verified_or_invalid_client(assertion: str) -> None:
    presented = PresentedCredentials("agent", "private_key_jwt", None, assertion)
    keys = KeySet([SIGNING_KEY])
    try:
        jti, exp = verify_assertion(presented, keys, audiences={ISSUER}, now=NOW, max_lifetime=3600)
    except InvalidClient as exc:
        assert exc.http_status == 401
        return
    # Accepted only with every claim RFC 7523 3 asks for.
    assert jti and NOW < exp <= NOW + 3600

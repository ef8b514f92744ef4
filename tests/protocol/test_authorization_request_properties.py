"""Properties of the authorization request validator shared by /par and /authorize."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import OAuthError
from grantline.models import AuthorizationRequest, Client
from grantline.policy.authorization_details import DetailTypeRegistry
from grantline.protocol.authorization_request import validate_authorization_request
from grantline.protocol.params import VALUE_SEPARATOR
from grantline.protocol.pkce import s256_challenge
from tests.helpers import EXAMPLE_TYPES
from tests.strategies import PROPERTY, hostile_text, json_values, uri_like

CLIENT = Client(
    "agent",
    "Agent",
    "client_secret_basic",
    ("https://a.example/cb", "http://127.0.0.1/cb"),
    resources=("https://api.example/",),
)
KNOWN = {"inbox.read": "Read", "invoices.pay": "Pay"}
TYPES = DetailTypeRegistry(EXAMPLE_TYPES)

_VALUES = {
    "response_type": st.one_of(st.just("code"), hostile_text(8)),
    "redirect_uri": st.one_of(st.just("https://a.example/cb"), uri_like()),
    "scope": st.one_of(st.just("inbox.read"), hostile_text(20)),
    "state": hostile_text(40),
    "code_challenge": st.one_of(st.just(s256_challenge("v" * 43)), hostile_text(50)),
    "code_challenge_method": st.one_of(st.just("S256"), hostile_text(6)),
    "authorization_details": st.one_of(json_values().map(json.dumps), hostile_text(40)),
    "resource": st.lists(st.one_of(st.just("https://api.example/"), uri_like()), min_size=1).map(
        VALUE_SEPARATOR.join
    ),
    "dpop_jkt": hostile_text(45),
    "response_mode": hostile_text(8),
    "request_uri": hostile_text(20),
    "request": hostile_text(20),
}
_PARAMS = st.fixed_dictionaries(
    {}, optional={name: values.filter(bool) for name, values in _VALUES.items()}
)


@PROPERTY
@given(_PARAMS, st.booleans())
def test_any_request_is_valid_or_an_oauth_error(params: dict[str, str], pushed: bool) -> None:
    try:
        request = validate_authorization_request(
            params, CLIENT, known_scopes=KNOWN, detail_types=TYPES, pushed=pushed
        )
    except OAuthError as exc:
        assert exc.http_status == 400
        return
    assert isinstance(request, AuthorizationRequest)
    assert request.response_type == "code" and request.code_challenge_method == "S256"

from __future__ import annotations

import pytest

from grantline.errors import OAuthError
from grantline.models import Client
from grantline.policy.authorization_details import DetailTypeRegistry
from grantline.protocol.authorization_request import (
    MAX_STATE_LENGTH,
    validate_authorization_request,
)
from grantline.protocol.pkce import s256_challenge
from tests.helpers import EXAMPLE_TYPES

CLIENT = Client(
    "agent", "Agent", "client_secret_basic", ("https://a.example/cb", "https://a.example/2")
)
KNOWN = {"inbox.read": "Read", "invoices.pay": "Pay"}
CHALLENGE = s256_challenge("v" * 43)
TYPES = DetailTypeRegistry(EXAMPLE_TYPES)


def params(**overrides: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "client_id": "agent",
        "response_type": "code",
        "redirect_uri": "https://a.example/cb",
        "scope": "inbox.read",
        "state": "st",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("pushed", [True, False], ids=["par", "authorize"])
def test_a_valid_request_is_parsed_identically_at_both_endpoints(pushed: bool) -> None:
    request = validate_authorization_request(
        params(), CLIENT, known_scopes=KNOWN, detail_types=TYPES, pushed=pushed
    )
    assert request.client_id == "agent"
    assert request.redirect_uri == "https://a.example/cb"
    assert request.scopes == ("inbox.read",)
    assert request.state == "st"
    assert request.code_challenge == CHALLENGE


CASES = [
    ("missing-response-type", {"response_type": None}, "invalid_request", True),
    ("token-response-type", {"response_type": "token"}, "unsupported_response_type", True),
    ("hybrid-response-type", {"response_type": "code id_token"}, "unsupported_response_type", True),
    ("missing-pkce", {"code_challenge": None}, "invalid_request", True),
    ("plain-pkce", {"code_challenge_method": "plain"}, "invalid_request", True),
    ("unknown-scope", {"scope": "admin"}, "invalid_scope", True),
    ("fragment-response-mode", {"response_mode": "fragment"}, "invalid_request", True),
    ("request-object", {"request": "eyJ..."}, "request_not_supported", True),
    (
        "unregistered-redirect",
        {"redirect_uri": "https://evil.example/cb"},
        "invalid_request",
        False,
    ),
    ("missing-redirect-two-registered", {"redirect_uri": None}, "invalid_request", False),
    ("long-state", {"state": "s" * (MAX_STATE_LENGTH + 1)}, "invalid_request", True),
]


@pytest.mark.parametrize(
    ("overrides", "error", "redirectable"),
    [pytest.param(o, e, r, id=i) for i, o, e, r in CASES],
)
def test_refusals_carry_the_rfc_error_code(
    overrides: dict[str, str | None], error: str, redirectable: bool
) -> None:
    with pytest.raises(OAuthError) as info:
        validate_authorization_request(
            params(**overrides), CLIENT, known_scopes=KNOWN, detail_types=TYPES, pushed=True
        )
    assert info.value.error == error
    assert info.value.status_code == 400
    assert info.value.redirectable is redirectable


def test_request_uri_is_refused_at_par_only() -> None:
    with pytest.raises(OAuthError, match="request_uri must not") as info:
        validate_authorization_request(
            params(request_uri="urn:x"), CLIENT, known_scopes=KNOWN, detail_types=TYPES, pushed=True
        )
    assert info.value.error == "invalid_request"


def test_unregistered_redirect_uri_is_checked_before_anything_else() -> None:
    # An unsafe redirect_uri must win over other errors so they are never redirected to it.
    with pytest.raises(OAuthError) as info:
        validate_authorization_request(
            params(redirect_uri="https://evil.example/", response_type="token"),
            CLIENT,
            known_scopes=KNOWN,
            detail_types=TYPES,
            pushed=False,
        )
    assert info.value.redirectable is False


def test_client_scope_allow_list_applies() -> None:
    narrow = Client("agent", "A", "none", ("https://a.example/cb",), scopes=("inbox.read",))
    with pytest.raises(OAuthError) as info:
        validate_authorization_request(
            params(scope="invoices.pay"),
            narrow,
            known_scopes=KNOWN,
            detail_types=TYPES,
            pushed=True,
        )
    assert info.value.error == "invalid_scope"

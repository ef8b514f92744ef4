"""Helpers for the Rich Authorization Requests (RFC 9396) integration tests: pushing a request
with ``authorization_details``, checking the RFC 9068 access token against ``/jwks``, and
introspecting it (RFC 7662).

Like ``support``, nothing here imports the ``grantline`` package: the server is reached only
over HTTP.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.integration.support import GrantlineServer, Pushed, new_verifier, s256

#: RFC 9396 section 2, the example of a payment initiation, verbatim.
PAYMENT_ITEM: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status", "cancel"],
    "locations": ["https://example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Ref Number Merchant",
}
FILE_ITEM: dict[str, Any] = {"type": "file_access", "locations": ["/reports"], "actions": ["read"]}

#: RFC 9068 section 2.1.
ACCESS_TOKEN_TYP = "at+jwt"


def push_with_details(
    agent: httpx.Client,
    server: GrantlineServer,
    authorization_details: Sequence[dict[str, Any]],
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    state: str | None = None,
    scope: str | None = None,
) -> Pushed:
    """POST /par with Basic authentication, PKCE S256 and ``authorization_details`` (a JSON
    array, RFC 9396 section 2); asserts 201."""
    verifier = new_verifier()
    state = secrets.token_urlsafe(16) if state is None else state
    data = {
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "authorization_details": json.dumps(list(authorization_details)),
    }
    if scope is not None:
        data["scope"] = scope
    response = agent.post(server.url("/par"), auth=(client_id, client_secret), data=data)
    assert response.status_code == 201, response.text
    body = response.json()
    return Pushed(body["request_uri"], body["expires_in"], verifier, state, redirect_uri)


def push_dev_with_details(
    agent: httpx.Client,
    server: GrantlineServer,
    authorization_details: Sequence[dict[str, Any]],
) -> Pushed:
    creds = server.credentials
    return push_with_details(
        agent,
        server,
        authorization_details,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        redirect_uri=server.dev_redirect_uri,
    )


@dataclass(frozen=True)
class VerifiedAccessToken:
    header: dict[str, Any]
    claims: dict[str, Any]
    jwks_kids: frozenset[str]


def verify_access_token(
    agent: httpx.Client, server: GrantlineServer, token: str
) -> VerifiedAccessToken:
    """Verify the JWT's signature with the server's published JWKS (ES256 only); the caller
    checks the header and claims."""
    response = agent.get(server.url("/jwks"))
    assert response.status_code == 200, response.text
    jwks = response.json()
    kids = frozenset(str(key["kid"]) for key in jwks["keys"])
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    return VerifiedAccessToken(dict(decoded.header), dict(decoded.claims), kids)


def introspect(
    agent: httpx.Client,
    server: GrantlineServer,
    token: str,
    *,
    client_id: str,
    client_secret: str,
) -> dict[str, Any]:
    """POST /introspect of an access token with Basic authentication; asserts 200 and returns
    the JSON body."""
    data = {"token": token, "token_type_hint": "access_token"}
    response = agent.post(server.url("/introspect"), auth=(client_id, client_secret), data=data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict), body
    return body

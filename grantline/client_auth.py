"""Client authentication at the back-channel endpoints (RFC 6749 2.3, RFC 9126 2.1).

Methods: ``client_secret_basic``, ``client_secret_post``, ``private_key_jwt`` (RFC 7523) and
``none`` (public clients, which identify themselves with ``client_id`` only). A client must use
the method it registered. This module works out what was presented and checks it against the
client; looking the client up, fetching keys and the replay cache are the caller's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from joserfc.jwk import KeySet

from grantline.errors import InvalidClient, InvalidRequest
from grantline.models import AuthMethod, Client
from grantline.protocol.client_assertion import JWT_BEARER, check_assertion_claims
from grantline.protocol.jose import (
    CLIENT_SIGNING_ALGS,
    JoseFailure,
    unverified_payload,
    verify_compact,
)
from grantline.protocol.params import is_clean_value
from grantline.tokens.digest import Digester

__all__ = [
    "AUTH_PARAMS",
    "PresentedCredentials",
    "authenticate_client",
    "present_credentials",
    "verify_assertion",
]

#: Parameters that carry client credentials; never stored with a request.
AUTH_PARAMS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})
# Computed against unknown clients so that a miss costs the same as a wrong secret.
_DUMMY_DIGEST = "0" * 64


@dataclass(frozen=True, slots=True)
class PresentedCredentials:
    client_id: str
    method: AuthMethod
    secret: str | None
    assertion: str | None = None


def present_credentials(
    authorization: str | None, params: Mapping[str, str]
) -> PresentedCredentials:
    """Work out which client and method a request claims, without checking anything stored."""
    body_id = params.get("client_id")
    if "client_assertion" in params or "client_assertion_type" in params:
        return _present_assertion(authorization, params, body_id)
    if authorization is not None and authorization[:6].lower() == "basic ":
        if "client_secret" in params:
            raise InvalidRequest("Use exactly one client authentication method.")
        client_id, secret = _decode_basic(authorization[6:].strip())
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id does not match the authenticated client.")
        return PresentedCredentials(client_id, "client_secret_basic", secret)
    if authorization is not None:
        raise InvalidClient("Unsupported Authorization scheme.")
    if body_id is None:
        raise InvalidClient("Client authentication is required.")
    if "client_secret" in params:
        return PresentedCredentials(body_id, "client_secret_post", params["client_secret"])
    return PresentedCredentials(body_id, "none", None)


def _present_assertion(
    authorization: str | None, params: Mapping[str, str], body_id: str | None
) -> PresentedCredentials:
    if authorization is not None or "client_secret" in params:
        raise InvalidRequest("Use exactly one client authentication method.")
    if params.get("client_assertion_type") != JWT_BEARER:
        raise InvalidClient(f"client_assertion_type must be {JWT_BEARER}.")
    assertion = params.get("client_assertion")
    if assertion is None:
        raise InvalidClient("client_assertion is missing.")
    # The client is named by client_id or, failing that, by the assertion's own sub claim;
    # either way the signature and iss/sub are checked against that client's keys.
    client_id = body_id or _unverified_subject(assertion)
    return PresentedCredentials(client_id, "private_key_jwt", None, assertion)


def _unverified_subject(assertion: str) -> str:
    try:
        claims = unverified_payload(assertion)
    except JoseFailure:
        raise InvalidClient("client_assertion is not a JWT.") from None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    # The subject is looked up in the database before anything is verified: it must be text
    # every database can take (no NUL, no lone surrogate).
    if not isinstance(subject, str) or not subject or not _storable(subject):
        raise InvalidClient("client_assertion has no sub.")
    return subject


def _storable(value: str) -> bool:
    return is_clean_value(value) and not any("\ud800" <= ch <= "\udfff" for ch in value)


def _decode_basic(encoded: str) -> tuple[str, str]:
    """RFC 6749 2.3.1: id and secret are form-urlencoded, joined by ':', then base64."""
    try:
        decoded = base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
        raw_id, sep, raw_secret = decoded.partition(":")
        client_id, secret = raw_id, raw_secret
        if "%" in decoded or "+" in decoded:
            client_id = unquote_plus(raw_id, errors="strict")
            secret = unquote_plus(raw_secret, errors="strict")
    except (binascii.Error, UnicodeError):
        raise InvalidClient("Malformed Basic credentials.") from None
    if not sep or not client_id or not is_clean_value(client_id) or not is_clean_value(secret):
        raise InvalidClient("Malformed Basic credentials.")
    return client_id, secret


def authenticate_client(
    client: Client | None, digester: Digester, presented: PresentedCredentials
) -> Client:
    """``client`` (the one registered under the presented client_id, or None), if it uses the
    presented method and, for secrets, the secret matches; else ``invalid_client`` (401).
    Assertions are checked by ``verify_assertion`` once the caller has the client's keys.

    Every ``InvalidClient`` carries the ``WWW-Authenticate`` challenge (RFC 6749 5.2).
    """
    if presented.secret is not None:
        stored = client.secret_digest if client is not None else None
        valid = digester.matches("client_secret", presented.secret, stored or _DUMMY_DIGEST)
    else:
        valid = True
    if client is None:
        raise InvalidClient("Unknown client.", detail="unknown client_id")
    if client.auth_method != presented.method:
        raise InvalidClient(
            f"This client must authenticate with {client.auth_method}.",
            detail=f"used {presented.method}",
        )
    if not valid or (presented.secret is not None and client.secret_digest is None):
        raise InvalidClient("Client authentication failed.", detail="bad secret")
    return client


def verify_assertion(
    presented: PresentedCredentials,
    keys: KeySet,
    *,
    audiences: Collection[str],
    now: int,
    max_lifetime: int,
) -> tuple[str, int]:
    """Check a private_key_jwt assertion; returns (jti, exp) for the caller's replay cache."""
    assert presented.assertion is not None
    try:
        _, claims = verify_compact(presented.assertion, keys, CLIENT_SIGNING_ALGS)
    except JoseFailure as exc:
        raise InvalidClient(f"Client assertion: {exc}.", detail=f"assertion: {exc}") from None
    return check_assertion_claims(claims, presented.client_id, audiences, now, max_lifetime)

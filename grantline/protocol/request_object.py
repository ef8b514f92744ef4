"""Signed request objects at the PAR endpoint (RFC 9101, RFC 9126 section 3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from grantline.errors import InvalidRequestObject
from grantline.protocol.jose import JoseFailure, number
from grantline.protocol.params import REPEATABLE, VALUE_SEPARATOR, is_clean_value

__all__ = ["REQUEST_OBJECT_TYP", "request_object_params"]

#: RFC 9101 section 10.8 media type; "JWT" and no typ at all are accepted too.
REQUEST_OBJECT_TYP = "oauth-authz-req+jwt"
_ACCEPTED_TYPS = (None, REQUEST_OBJECT_TYP, "JWT")
_JWT_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})
LEEWAY = 30


def request_object_params(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    client_id: str,
    issuer: str,
    now: int,
    max_lifetime: int,
) -> tuple[dict[str, str], str, int]:
    """The authorization request parameters carried by a verified request object, with the
    ``jti`` and ``exp`` for the replay cache.

    RFC 9101 6.3: ``iss`` is the client, ``aud`` the issuer; the ``client_id`` claim, if
    present, must match. Values that are JSON structures (``authorization_details``) become
    their JSON text so that the one validator checks them as it would form parameters.
    """
    if header.get("typ") not in _ACCEPTED_TYPS:
        raise InvalidRequestObject(f"typ must be {REQUEST_OBJECT_TYP}.")
    try:
        exp = number(claims, "exp")
        nbf = number(claims, "nbf")
        iat = number(claims, "iat")
    except JoseFailure as exc:
        raise InvalidRequestObject(f"Request object: {exc}.") from None
    if claims.get("iss") != client_id:
        raise InvalidRequestObject("iss must be the client_id.")
    aud = claims.get("aud")
    if aud != issuer and not (isinstance(aud, list) and issuer in aud):
        raise InvalidRequestObject("aud must be this server's issuer identifier.")
    if "client_id" in claims and claims["client_id"] != client_id:
        raise InvalidRequestObject("The client_id claim does not match the client.")
    if exp is None or exp <= now:
        raise InvalidRequestObject("The request object is expired or has no exp.")
    if exp > now + max_lifetime or (nbf is not None and exp - nbf > max_lifetime):
        raise InvalidRequestObject("The request object lives too long.")
    if nbf is not None and nbf > now + LEEWAY:
        raise InvalidRequestObject("The request object is not valid yet.")
    if iat is not None and iat > now + LEEWAY:
        raise InvalidRequestObject("The request object was issued in the future.")
    if "request" in claims or "request_uri" in claims:
        raise InvalidRequestObject("A request object must not contain request or request_uri.")
    jti = claims.get("jti")
    if jti is not None and (
        not isinstance(jti, str) or not jti or len(jti) > 256 or not is_clean_value(jti)
    ):
        raise InvalidRequestObject("jti must be a non-empty string without control characters.")
    params: dict[str, str] = {"client_id": client_id}
    for name, value in claims.items():
        if name in _JWT_CLAIMS or name == "client_id":
            continue
        params[name] = _as_param(name, value)
    return params, str(jti) if jti else "", exp


def _as_param(name: str, value: Any) -> str:
    # The same characters are refused here as in form parameters (and the separator of
    # repeated values is among them), so a request object is never a way around those rules.
    if isinstance(value, str):
        if not is_clean_value(value):
            raise InvalidRequestObject(f"{name} contains a control character.")
        return value
    if name in REPEATABLE and isinstance(value, list) and all(isinstance(v, str) for v in value):
        if not all(is_clean_value(v) for v in value):
            raise InvalidRequestObject(f"{name} contains a control character.")
        return VALUE_SEPARATOR.join(value)
    if name == "authorization_details":
        return json.dumps(value)
    raise InvalidRequestObject(f"The {name} claim must be a string.")

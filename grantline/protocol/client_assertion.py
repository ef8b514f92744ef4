"""private_key_jwt client assertions (RFC 7523 section 3, OpenID Connect Core section 9)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from grantline.errors import InvalidClient
from grantline.protocol.jose import JoseFailure, number
from grantline.protocol.params import is_clean_value

__all__ = ["JWT_BEARER", "check_assertion_claims"]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Clock skew tolerated on ``nbf`` and ``iat``.
LEEWAY = 30


def check_assertion_claims(
    claims: Mapping[str, Any],
    client_id: str,
    audiences: Collection[str],
    now: int,
    max_lifetime: int,
) -> tuple[str, int]:
    """Check an assertion's claims; returns (jti, exp) for the replay cache.

    RFC 7523 3: ``iss`` and ``sub`` are the client_id, ``aud`` names this server, ``exp`` is
    required; ``jti`` is required here so that every assertion is single use.
    """
    try:
        exp = number(claims, "exp")
        nbf = number(claims, "nbf")
        iat = number(claims, "iat")
    except JoseFailure as exc:
        raise InvalidClient(f"Client assertion: {exc}.") from None
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("Client assertion: iss and sub must be the client_id.")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audiences for a in named):
        raise InvalidClient("Client assertion: aud must be this server's issuer identifier.")
    if exp is None:
        raise InvalidClient("Client assertion: exp is required.")
    if exp <= now:
        raise InvalidClient("Client assertion: expired.")
    if exp > now + max_lifetime:
        raise InvalidClient("Client assertion: exp is too far in the future.")
    if nbf is not None and nbf > now + LEEWAY:
        raise InvalidClient("Client assertion: not valid yet.")
    if iat is not None and iat > now + LEEWAY:
        raise InvalidClient("Client assertion: issued in the future.")
    jti = claims.get("jti")
    # The jti is stored in the replay cache: no control characters (PostgreSQL refuses NUL).
    if not isinstance(jti, str) or not jti or len(jti) > 256 or not is_clean_value(jti):
        raise InvalidClient("Client assertion: jti is required.")
    return jti, exp

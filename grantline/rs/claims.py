"""What a verified access token says (RFC 9068 section 2.2, RFC 7662 section 2.2), and the
checks every token passes whichever way it was verified."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grantline.protocol.jose import JoseFailure, number
from grantline.rs.authorization import Grant, TypeRules
from grantline.rs.errors import InvalidToken, Scheme

__all__ = ["VerifiedToken", "token_from_claims"]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """An access token that passed every check, for this resource and this request."""

    claims: Mapping[str, Any]
    jti: str
    sub: str
    client_id: str
    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    authorization_details: tuple[Mapping[str, Any], ...]
    #: RFC 9449 6.1 ``cnf.jkt``: the thumbprint of the key the token is bound to.
    jkt: str | None
    expires_at: int

    @property
    def scheme(self) -> Scheme:
        return "DPoP" if self.jkt is not None else "Bearer"

    def grant(self, rules: Mapping[str, TypeRules] | None = None) -> Grant:
        """The token's ``authorization_details``, ready for ``require(type=..., **facts)``."""
        return Grant(self.authorization_details, rules, scheme=self.scheme)


def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"The access token has no {name}.")
    return value


def _time(claims: Mapping[str, Any], name: str) -> int | None:
    try:
        return number(claims, name)
    except JoseFailure as exc:
        raise InvalidToken(f"The access token's {exc}.") from None


def _audience(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not all(isinstance(a, str) for a in values):
        raise InvalidToken("The access token has no valid aud.")
    return tuple(values)


def _details(claims: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    details = claims.get("authorization_details", [])
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("type"), str) for d in details
    ):
        raise InvalidToken("The access token's authorization_details are malformed.")
    # Copies: what the application does with them cannot change the token's own claims.
    return tuple(copy.deepcopy(d) for d in details)


def _jkt(claims: Mapping[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    if not isinstance(cnf, dict) or set(cnf) != {"jkt"} or not isinstance(cnf["jkt"], str):
        # A confirmation this resource server cannot check (mTLS x5t#S256, a jwk...) must not
        # be taken for no confirmation at all.
        raise InvalidToken("The access token's cnf names a binding this resource cannot check.")
    return cnf["jkt"]


def token_from_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    resource: str,
    now: int,
    leeway: int,
    jwt: bool,
) -> VerifiedToken:
    """Check issuer, audience and times, and read the rest; ``InvalidToken`` otherwise.
    Introspection answers may leave out ``iss`` and ``iat`` (RFC 7662 2.2); a JWT access
    token may not (RFC 9068 2.2)."""
    if claims.get("iss", None if jwt else issuer) != issuer:
        raise InvalidToken("The access token was issued by another issuer.")
    audience = _audience(claims)
    # RFC 8707 / RFC 9068 4: the token must be meant for this resource.
    if resource not in audience:
        raise InvalidToken("The access token is not meant for this resource.")
    exp = _time(claims, "exp")
    if exp is None:
        raise InvalidToken("The access token has no exp.")
    if now >= exp + leeway:
        raise InvalidToken("The access token has expired.")
    nbf = _time(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise InvalidToken("The access token is not valid yet.")
    iat = _time(claims, "iat")
    if iat is None and jwt:
        raise InvalidToken("The access token has no iat.")
    if iat is not None and iat > now + leeway:
        raise InvalidToken("The access token was issued in the future.")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("The access token's scope is malformed.")
    return VerifiedToken(
        claims=copy.deepcopy(dict(claims)),
        jti=_string(claims, "jti"),
        sub=_string(claims, "sub"),
        client_id=_string(claims, "client_id"),
        scopes=tuple(scope.split()),
        audience=audience,
        authorization_details=_details(claims),
        jkt=_jkt(claims),
        expires_at=exp,
    )

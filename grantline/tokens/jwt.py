"""JWT access tokens (RFC 9068), signed with the newest active key of the configured alg."""

from __future__ import annotations

from typing import Any

from joserfc import jwt

from grantline.errors import ServerError
from grantline.storage import SigningKeyStore
from grantline.tokens.keys import parsed_key

__all__ = ["ACCESS_TOKEN_TYP", "sign_access_token"]

#: RFC 9068 section 2.1: "the 'typ' value used SHOULD be 'at+jwt'".
ACCESS_TOKEN_TYP = "at+jwt"


async def sign_access_token(
    keys: SigningKeyStore, alg: str, claims: dict[str, Any], now: int, *, secret: bytes
) -> str:
    for key in await keys.list_signing_keys(now):
        if key.active and key.alg == alg:
            header = {"typ": ACCESS_TOKEN_TYP, "alg": alg, "kid": key.kid}
            return jwt.encode(header, claims, parsed_key(key, secret), algorithms=[alg])
    raise ServerError(
        detail=f"no active {alg} signing key: run `grantline keys rotate --alg {alg}`"
    )

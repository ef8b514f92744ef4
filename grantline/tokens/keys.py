"""Signing keys: generated with joserfc, kept in the database, published as a JWKS.

Keys never change once written, so parsed keys are cached by kid; which keys are active is
read from the database on every use, so a rotation by any node applies everywhere at once.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from grantline.models import SigningKey
from grantline.storage import SigningKeyStore

__all__ = ["create_signing_key", "parsed_key", "public_jwks", "rotate_signing_key"]

AnyKey = ECKey | OKPKey | RSAKey


def _generate(alg: str) -> AnyKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg == "Ed25519":
        return OKPKey.generate_key("Ed25519", auto_kid=True)
    if alg == "RS256":
        return RSAKey.generate_key(3072, auto_kid=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


async def create_signing_key(keys: SigningKeyStore, now: int, alg: str = "ES256") -> str:
    """Create a key for ``alg``; its kid is the RFC 7638 thumbprint."""
    key = _generate(alg)
    private = key.as_dict(private=True)
    private["alg"] = alg
    private["use"] = "sig"
    kid = str(private["kid"])
    await keys.add_signing_key(kid, alg, json.dumps(private), now)
    return kid


async def rotate_signing_key(keys: SigningKeyStore, now: int, alg: str, verify_for: int) -> str:
    """Create a new active key for ``alg``; older keys of the same alg stay published for
    ``verify_for`` seconds, the longest an access token they signed can still be valid. Keys of
    other algs stay active, so rotating ahead of an algorithm change never stops issuance."""
    kid = await create_signing_key(keys, now, alg)
    await keys.retire_signing_keys(kid, alg, now + verify_for)
    return kid


@lru_cache(maxsize=64)
def parsed_key(private_jwk: str) -> AnyKey:
    key = import_key(json.loads(private_jwk))
    assert isinstance(key, (ECKey, OKPKey, RSAKey))
    return key


def public_jwk(key: SigningKey) -> dict[str, Any]:
    public = parsed_key(key.private_jwk).as_dict(private=False)
    public["alg"] = key.alg
    public["use"] = "sig"
    return public


async def public_jwks(keys: SigningKeyStore, now: int) -> dict[str, Any]:
    """RFC 7517 JWK Set of every key that may still verify something; private parts removed."""
    return {"keys": [public_jwk(key) for key in await keys.list_signing_keys(now)]}

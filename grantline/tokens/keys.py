"""Signing keys: generated with joserfc, kept in the database sealed, published as a JWKS.

Private keys are sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the instance's
secret key, with the kid as associated data, so a copy of the database alone cannot sign
tokens. Keys never change once written, so unsealed keys are cached; which keys are active is
read from the database on every use, so a rotation by any node applies everywhere at once.
"""

from __future__ import annotations

import base64
import json
import os
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from grantline.models import SigningKey
from grantline.storage import SigningKeyStore

__all__ = [
    "create_signing_key",
    "parsed_key",
    "public_jwks",
    "rotate_signing_key",
    "seal",
    "unseal",
]

AnyKey = ECKey | OKPKey | RSAKey
_SEALED_PREFIX = "sealed.v1."


def _generate(alg: str) -> AnyKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg == "Ed25519":
        return OKPKey.generate_key("Ed25519", auto_kid=True)
    if alg == "RS256":
        return RSAKey.generate_key(3072, auto_kid=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


@lru_cache(maxsize=8)
def _aead(secret: bytes) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"grantline signing keys v1"
    ).derive(secret)
    return AESGCM(key)


def seal(secret: bytes, kid: str, private_jwk: str) -> str:
    nonce = os.urandom(12)
    sealed = _aead(secret).encrypt(nonce, private_jwk.encode("utf-8"), kid.encode("utf-8"))
    return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(secret: bytes, kid: str, stored: str) -> str:
    """The private JWK JSON; raises ``cryptography.exceptions.InvalidTag`` for a wrong secret
    or a tampered row."""
    if not stored.startswith(_SEALED_PREFIX):
        return stored  # written before keys were sealed
    raw = base64.urlsafe_b64decode(stored[len(_SEALED_PREFIX) :])
    return _aead(secret).decrypt(raw[:12], raw[12:], kid.encode("utf-8")).decode("utf-8")


async def create_signing_key(
    keys: SigningKeyStore, now: int, alg: str = "ES256", *, secret: bytes
) -> str:
    """Create a key for ``alg``; its kid is the RFC 7638 thumbprint."""
    key = _generate(alg)
    private = key.as_dict(private=True)
    private["alg"] = alg
    private["use"] = "sig"
    kid = str(private["kid"])
    await keys.add_signing_key(kid, alg, seal(secret, kid, json.dumps(private)), now)
    return kid


async def rotate_signing_key(
    keys: SigningKeyStore, now: int, alg: str, verify_for: int, *, secret: bytes
) -> str:
    """Create a new active key for ``alg``; older keys of the same alg stay published for
    ``verify_for`` seconds, the longest an access token they signed can still be valid. Keys of
    other algs stay active, so rotating ahead of an algorithm change never stops issuance."""
    kid = await create_signing_key(keys, now, alg, secret=secret)
    await keys.retire_signing_keys(kid, alg, now + verify_for)
    return kid


def parsed_key(key: SigningKey, secret: bytes) -> AnyKey:
    return _parsed(secret, key.kid, key.private_jwk)


@lru_cache(maxsize=64)
def _parsed(secret: bytes, kid: str, stored: str) -> AnyKey:
    key = import_key(json.loads(unseal(secret, kid, stored)))
    assert isinstance(key, (ECKey, OKPKey, RSAKey))
    return key


def public_jwk(key: SigningKey, secret: bytes) -> dict[str, Any]:
    public = parsed_key(key, secret).as_dict(private=False)
    public["alg"] = key.alg
    public["use"] = "sig"
    return public


async def public_jwks(keys: SigningKeyStore, now: int, *, secret: bytes) -> dict[str, Any]:
    """RFC 7517 JWK Set of every key that may still verify something; private parts removed."""
    return {"keys": [public_jwk(key, secret) for key in await keys.list_signing_keys(now)]}

"""Signing keys: generated with joserfc, kept in the database, published as a JWKS."""

from __future__ import annotations

import json
from typing import Any

from joserfc.jwk import ECKey

from grantline.storage import SigningKeyStore

__all__ = ["create_signing_key", "public_jwks"]

DEFAULT_ALG = "ES256"


async def create_signing_key(keys: SigningKeyStore, now: int) -> str:
    """Create an ES256 (P-256) key; its kid is the RFC 7638 thumbprint."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    private = key.as_dict(private=True)
    private["alg"] = DEFAULT_ALG
    private["use"] = "sig"
    kid = str(private["kid"])
    await keys.add_signing_key(kid, DEFAULT_ALG, json.dumps(private), now)
    return kid


async def public_jwks(keys: SigningKeyStore) -> dict[str, Any]:
    """RFC 7517 JWK Set of every key that may still verify something; private parts removed."""
    published = []
    for _kid, _alg, private_json in await keys.list_signing_keys():
        key = ECKey.import_key(json.loads(private_json))
        public = key.as_dict(private=False)
        published.append(public)
    return {"keys": published}

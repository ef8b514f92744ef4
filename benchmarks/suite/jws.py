"""ES256 keys and compact JWS for the load fixtures: client assertions and DPoP proofs.

Signed here with ``cryptography`` directly rather than through a JOSE library: a run needs
tens of thousands of single-use tokens minted in a few seconds before each measurement.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["EcKey", "b64url", "pkce_pair"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _coordinate(value: int) -> str:
    return b64url(value.to_bytes(32, "big"))


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class EcKey:
    """A P-256 key pair with its kid."""

    private: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def generate(cls) -> EcKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), secrets.token_urlsafe(8))

    def public_jwk(self, *, with_kid: bool = True) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _coordinate(numbers.x),
            "y": _coordinate(numbers.y),
        }
        if with_kid:
            jwk |= {"kid": self.kid, "alg": "ES256", "use": "sig"}
        return jwk

    def private_jwk(self) -> dict[str, str]:
        d = self.private.private_numbers().private_value
        return {**self.public_jwk(), "d": _coordinate(d)}

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint (the DPoP ``jkt``)."""
        members = self.public_jwk(with_kid=False)
        canonical = json.dumps(
            {k: members[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
        )
        return b64url(hashlib.sha256(canonical.encode("ascii")).digest())

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self.private.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def client_assertions(self, client_id: str, audience: str, count: int) -> Iterator[str]:
        """RFC 7523 private_key_jwt assertions, each with its own jti, valid for 10 minutes."""
        now = int(time.time())
        header = {"alg": "ES256", "typ": "JWT", "kid": self.kid}
        for _ in range(count):
            claims = {
                "iss": client_id,
                "sub": client_id,
                "aud": audience,
                "jti": secrets.token_urlsafe(16),
                "iat": now,
                "exp": now + 600,
            }
            yield self.sign(header, claims)

    def dpop_proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """One RFC 9449 proof for ``method url`` (bound to ``access_token`` via ``ath``)."""
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk(with_kid=False)}
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        return self.sign(header, claims)

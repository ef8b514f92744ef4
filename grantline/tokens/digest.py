"""Random bearer secrets and the keyed digests under which they are stored.

A database leak must not hand out usable request_uris, codes, tokens or client secrets, so only
``HMAC-SHA256(secret_key, purpose || value)`` is stored. The values carry 256 random bits, so a
fast keyed hash is as strong here as a slow password hash, and keeps the hot paths fast.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

__all__ = ["Digester", "Purpose", "new_secret"]

Purpose = Literal[
    "request_uri",
    "interaction",
    "browser",
    "session",
    "code",
    "access_token",
    "refresh_token",
    "client_secret",
    "csrf",
    "username",
    "sign_in_address",
    "sign_in_known",
]


def new_secret() -> str:
    """256 random bits, URL-safe (RFC 9126 7.1 wants request_uris that cannot be guessed)."""
    return secrets.token_urlsafe(32)


class Digester:
    """Computes the keyed digests of stored secrets; one instance per process."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, purpose: Purpose, value: str) -> str:
        """Hex digest of ``value``, domain-separated by ``purpose``."""
        message = purpose.encode("ascii") + b"\x00" + value.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, purpose: Purpose, value: str, expected_digest: str) -> bool:
        """Constant-time check that ``value`` has ``expected_digest``."""
        return hmac.compare_digest(self.digest(purpose, value), expected_digest)

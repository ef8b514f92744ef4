"""Proof Key for Code Exchange (RFC 7636), S256 only as RFC 9700 section 2.1.1 recommends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from grantline.errors import InvalidGrant, InvalidRequest

__all__ = ["SUPPORTED_METHODS", "s256_challenge", "validate_challenge", "verify"]

SUPPORTED_METHODS = ("S256",)

# RFC 7636 4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# BASE64URL(SHA256(verifier)) without padding is always 43 characters.
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def validate_challenge(challenge: str | None, method: str | None) -> tuple[str, str]:
    """Check the authorization request's PKCE parameters (RFC 7636 4.3, RFC 9700 2.1.1).

    A missing challenge, a missing method (RFC 7636 defaults it to ``plain``) or ``plain`` itself
    is ``invalid_request``.
    """
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE, RFC 7636).")
    if method is None:
        raise InvalidRequest("code_challenge_method is required and must be S256.")
    if method not in SUPPORTED_METHODS:
        raise InvalidRequest("code_challenge_method must be S256.")
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be a base64url SHA-256 digest (43 characters).")
    return challenge, method


def s256_challenge(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) per RFC 7636 4.2."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str | None, challenge: str) -> None:
    """RFC 7636 4.6: the token request's verifier must hash to the stored challenge."""
    if verifier is None:
        raise InvalidRequest("code_verifier is required.")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier is malformed.")
    if not hmac.compare_digest(s256_challenge(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")

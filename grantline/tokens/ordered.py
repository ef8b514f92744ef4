"""Refresh and access tokens whose stored ids sort by the time they were issued.

A refresh token is the issue time in milliseconds as 12 hex digits, then 256 random bits; an
access token's ``jti`` starts with the same 12 digits. Each is stored under that time, in
clear, followed by the keyed digest of the whole token. New rows of the tokens' indexes then
land on their last pages instead of a random one each, so a group commit of refreshes writes a
few index pages rather than one per token (benchmarks/README.md, "What changed because of
it"). The time tells the holder nothing the access token's ``iat`` does not, and a database
leak still yields no usable token.
"""

from __future__ import annotations

import base64
import secrets
import time

import orjson

from grantline.tokens.digest import Digester, new_secret

__all__ = ["TIME_DIGITS", "access_token_id", "new_jti", "new_refresh_token", "refresh_token_id"]

#: Hex digits of issue time (milliseconds) that lead a refresh token and an access token's jti.
TIME_DIGITS = 12
#: The length of ``new_secret()``: a refresh token issued before the time part was added.
_UNTIMED_LENGTH = 43
#: The length of a ``jti`` issued with its time part (the random part is 128 bits).
_TIMED_JTI_LENGTH = TIME_DIGITS + 22


def _issue_time() -> str:
    return f"{time.time_ns() // 1_000_000:0{TIME_DIGITS}x}"


def new_refresh_token() -> str:
    return _issue_time() + new_secret()


def new_jti() -> str:
    return _issue_time() + secrets.token_urlsafe(16)


def refresh_token_id(digester: Digester, value: str) -> str:
    """The stored id of a presented refresh token. Altering any part of a value, the time
    included, changes the digest, so a forged value finds nothing."""
    digest = digester.digest("refresh_token", value)
    if len(value) == _UNTIMED_LENGTH:
        return digest  # issued by an earlier version, still within its lifetime
    return value[:TIME_DIGITS] + digest


def access_token_id(digester: Digester, value: str) -> str:
    """The stored id of a presented access token: the time part of its ``jti``, read without
    checking the signature (a forged claim changes the digest as any other change does), then
    the keyed digest of the whole token. A value that is no JWT of ours, or one issued before
    jtis had a time part, is looked up by its digest alone."""
    digest = digester.digest("access_token", value)
    issued = _jti_time(value)
    return digest if issued is None else issued + digest


def _jti_time(value: str) -> str | None:
    parts = value.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:  # binascii.Error and orjson.JSONDecodeError are both ValueErrors
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    if not isinstance(jti, str) or len(jti) != _TIMED_JTI_LENGTH:
        return None
    return jti[:TIME_DIGITS]

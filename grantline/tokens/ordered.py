"""Refresh tokens whose stored ids sort by the time they were issued.

A refresh token is the issue time in milliseconds as 12 hex digits, then 256 random bits; it is
stored under that time, in clear, followed by the keyed digest of the whole value. New rows of
the tokens' primary-key index then land on its last pages instead of a random one each, so a
group commit of refreshes writes a few index pages rather than one per token (benchmarks/
README.md, "What changed because of it"). The time tells the holder nothing the access token
issued with it (``iat``) does not, and a database leak still yields no usable token.
"""

from __future__ import annotations

import time

from grantline.tokens.digest import Digester, new_secret

__all__ = ["TIME_DIGITS", "new_refresh_token", "refresh_token_id"]

#: Hex digits of issue time (milliseconds) that lead a refresh token.
TIME_DIGITS = 12
#: The length of ``new_secret()``: a refresh token issued before the time part was added.
_UNTIMED_LENGTH = 43


def new_refresh_token() -> str:
    return f"{time.time_ns() // 1_000_000:0{TIME_DIGITS}x}{new_secret()}"


def refresh_token_id(digester: Digester, value: str) -> str:
    """The stored id of a presented refresh token. Altering any part of a value, the time
    included, changes the digest, so a forged value finds nothing."""
    digest = digester.digest("refresh_token", value)
    if len(value) == _UNTIMED_LENGTH:
        return digest  # issued by an earlier version, still within its lifetime
    return value[:TIME_DIGITS] + digest

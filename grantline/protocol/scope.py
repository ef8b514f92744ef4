"""Scope parsing and checking (RFC 6749 section 3.3)."""

from __future__ import annotations

import re
from collections.abc import Collection

from grantline.errors import InvalidScope

__all__ = ["check_scope_subset", "parse_scope"]

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_scope(
    raw: str | None, known: Collection[str], allowed: Collection[str]
) -> tuple[str, ...]:
    """Split a ``scope`` value and check each token is known and allowed for the client.

    ``allowed`` empty means the client may use every known scope. The result keeps the client's
    order and drops repeats, so the stored request is canonical.
    """
    if raw is None:
        return ()
    tokens: list[str] = []
    for token in raw.split(" "):
        if not token:
            raise InvalidScope("scope values are separated by single spaces.")
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("scope contains a character RFC 6749 section 3.3 does not allow.")
        if token not in known:
            raise InvalidScope(f"The scope {token!r} is unknown.")
        if allowed and token not in allowed:
            raise InvalidScope(f"This client may not request the scope {token!r}.")
        if token not in tokens:
            tokens.append(token)
    return tuple(tokens)


def check_scope_subset(requested: tuple[str, ...], granted: tuple[str, ...]) -> None:
    """RFC 6749 6: a refresh "MUST NOT include any scope not originally granted"."""
    extra = [s for s in requested if s not in granted]
    if extra:
        raise InvalidScope(f"The scope {extra[0]!r} was not granted.")

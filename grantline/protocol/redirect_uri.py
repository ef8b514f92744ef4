"""Redirect URI rules: exact matching against registered values (RFC 9700 section 4.1.3)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from grantline.errors import PageOnlyInvalidRequest

__all__ = ["resolve_redirect_uri", "validate_registered_redirect_uri"]


def resolve_redirect_uri(requested: str | None, registered: Sequence[str]) -> str:
    """The redirect_uri this request will use.

    RFC 9700 4.1.1: "authorization servers MUST utilize exact string matching"; RFC 6749 3.1.2.3
    lets the parameter be omitted only when exactly one URI is registered. Errors here are never
    redirected (RFC 6749 4.1.2.1).
    """
    if requested is None:
        if len(registered) == 1:
            return registered[0]
        raise PageOnlyInvalidRequest("redirect_uri is required for this client.")
    if requested in registered or any(_loopback_match(requested, r) for r in registered):
        return requested
    raise PageOnlyInvalidRequest("redirect_uri is not registered for this client.")


def _loopback_match(requested: str, registered: str) -> bool:
    """RFC 8252 7.3 (and RFC 9700 2.1): for loopback IP redirect URIs "the authorization
    server MUST allow any port to be specified", since native apps get a free port at run time.
    Everything else still matches exactly; ``localhost`` is not a loopback IP here."""
    try:
        want, have = urlsplit(requested), urlsplit(registered)
        want.port  # noqa: B018 - raises on a malformed port
    except ValueError:  # an unbalanced "[" or a port out of range
        return False
    if have.scheme != "http" or have.hostname not in ("127.0.0.1", "::1"):
        return False
    return (
        want.scheme == "http"
        and want.hostname == have.hostname
        and want.path == have.path
        and want.query == have.query
        and not want.fragment
        and want.username is None
        and want.password is None
    )


def validate_registered_redirect_uri(uri: str) -> str:
    """Check a redirect URI at registration (RFC 6749 3.1.2, RFC 9700 4.1.3, 2.6).

    Absolute, no fragment; ``http`` only for loopback; custom schemes allowed for native apps.
    """
    parts = urlsplit(uri)
    if not parts.scheme or not (parts.netloc or parts.path):
        raise ValueError(f"redirect URI {uri!r} is not absolute")
    if parts.fragment or "#" in uri:
        raise ValueError(f"redirect URI {uri!r} must not contain a fragment")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"redirect URI {uri!r} has no host")
    if parts.scheme == "http":
        host = parts.hostname or ""
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"redirect URI {uri!r} must use https unless it is loopback")
    if parts.scheme in ("javascript", "data", "vbscript", "file"):
        raise ValueError(f"redirect URI scheme {parts.scheme!r} is not allowed")
    return uri

"""Pushed Authorization Request rules (RFC 9126): references, lifetimes, substitution."""

from __future__ import annotations

import time
from collections.abc import Mapping

from grantline.errors import InvalidRequestUri, PageOnlyInvalidRequest
from grantline.models import Client
from grantline.settings import PAR_LIFETIME_CAP
from grantline.tokens.digest import Digester, new_secret

__all__ = [
    "REQUEST_URI_PREFIX",
    "check_front_channel_params",
    "new_reference",
    "pushed_request_lifetime",
    "reference_id",
    "request_uri_secret",
]

#: RFC 9126 section 2.2 example prefix, registered by RFC 9101 for request URIs.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: Parameters the browser may carry beside a request_uri (RFC 9126 section 4).
_FRONT_CHANNEL_ALLOWED = frozenset({"client_id", "request_uri"})
_MAX_SECRET_LENGTH = 128


def request_uri_secret(request_uri: str) -> str:
    """The random part of a request_uri we issued; anything else is ``invalid_request_uri``."""
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        raise InvalidRequestUri("The request_uri was not issued by this server.")
    secret = request_uri[len(REQUEST_URI_PREFIX) :]
    if not secret or len(secret) > _MAX_SECRET_LENGTH:
        raise InvalidRequestUri("The request_uri was not issued by this server.")
    return secret


#: Hex digits of creation time (milliseconds) that lead a reference issued by this version.
_TIME_DIGITS = 12
#: The length of ``new_secret()``: a reference issued before the time part was added.
_UNTIMED_LENGTH = 43


def new_reference() -> str:
    """The part of a request_uri after the prefix: the time it was made, in milliseconds as
    12 hex digits, then 256 random bits (RFC 9126 7.1).

    The time part puts stored requests, and the audit events that name them, in creation
    order in their indexes: a new row lands on the last page rather than on a random one, and
    a group commit writes a few pages instead of two random ones per push (benchmarks/README.md,
    "What changed because of it"). It tells the holder only when the request was pushed.
    """
    return f"{time.time_ns() // 1_000_000:0{_TIME_DIGITS}x}{new_secret()}"


def reference_id(digester: Digester, reference: str) -> str:
    """The stored id of a reference: its time part in clear (so ids sort by age) and the keyed
    digest of the whole reference (a database leak gives no usable request_uri)."""
    digest = digester.digest("request_uri", reference)
    if len(reference) == _UNTIMED_LENGTH:
        return digest  # issued by an earlier version, still within its lifetime
    return reference[:_TIME_DIGITS] + digest


def pushed_request_lifetime(default: int, client: Client, *, fapi2: bool = False) -> int:
    """RFC 9126 2.2 ``expires_in``: the client's override or the server default, capped
    (FAPI 2.0 5.3.2.2 wants it "less than 600 seconds")."""
    lifetime = client.par_lifetime if client.par_lifetime is not None else default
    cap = PAR_LIFETIME_CAP - 1 if fapi2 else PAR_LIFETIME_CAP
    return max(1, min(lifetime, cap))


def check_front_channel_params(front: Mapping[str, str], pushed: Mapping[str, str]) -> None:
    """Refuse front-channel parameters that differ from the pushed ones.

    RFC 9126 section 4 has the server ignore such parameters; Grantline refuses them instead,
    because a mismatch means someone edited the URL between the client and the person, and a
    silent choice between two versions of a request is how request-URI swapping hides.
    """
    differing = sorted(
        name
        for name, value in front.items()
        if name not in _FRONT_CHANNEL_ALLOWED and pushed.get(name) != value
    )
    if differing:
        raise PageOnlyInvalidRequest(
            "The authorization request carries parameters that differ from the pushed request: "
            + ", ".join(differing)
            + "."
        )

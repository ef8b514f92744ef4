"""Pushed Authorization Request rules (RFC 9126): references, lifetimes, substitution."""

from __future__ import annotations

from collections.abc import Mapping

from grantline.errors import InvalidRequestUri, PageOnlyInvalidRequest
from grantline.models import Client
from grantline.settings import PAR_LIFETIME_CAP

__all__ = [
    "REQUEST_URI_PREFIX",
    "check_front_channel_params",
    "pushed_request_lifetime",
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

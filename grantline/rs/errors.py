"""The refusals a resource server sends, and the challenges that go with them.

RFC 6750 section 3 (``Bearer``) and RFC 9449 section 7.1 (``DPoP``) fix the error codes, the
HTTP status and the ``WWW-Authenticate`` challenge; the body is the OAuth error object
``{"error": ..., "error_description": ...}``. Nothing here depends on a web framework.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

__all__ = [
    "InsufficientAuthorizationDetails",
    "InvalidDpopProof",
    "InvalidRequest",
    "InvalidToken",
    "MissingToken",
    "ResourceError",
    "Scheme",
    "TemporarilyUnavailable",
    "www_authenticate",
]

Scheme = Literal["Bearer", "DPoP"]

#: RFC 6750 3: error_description and realm are limited to %x20-21 / %x23-5B / %x5D-7E, so a
#: quoted-string never needs escaping and cannot be broken out of.
_UNSAFE_IN_CHALLENGE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _bounded(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ResourceError(Exception):
    """Base of every refusal; subclasses pin ``error`` and ``status_code``."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400
    #: RFC 6750 3.1: a request without credentials gets a challenge without an error code.
    names_error_in_challenge: ClassVar[bool] = True
    #: Whether a ``WWW-Authenticate`` challenge goes with this refusal at all.
    challenges: ClassVar[bool] = True

    def __init__(
        self,
        description: str,
        *,
        scheme: Scheme = "Bearer",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # Descriptions may quote what the caller sent; bounded so nothing large is reflected.
        self.description = _bounded(description)
        #: The scheme the refusal is about: its challenge carries the error code.
        self.scheme: Scheme = scheme
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.description)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class MissingToken(ResourceError):
    """No access token, or one sent with a scheme this resource server does not accept."""

    error = "invalid_token"
    status_code = 401
    names_error_in_challenge = False


class InvalidRequest(ResourceError):
    """RFC 6750 3.1 ``invalid_request``: a malformed or repeated header."""


class InvalidToken(ResourceError):
    """RFC 6750 3.1 ``invalid_token``: "expired, revoked, malformed, or invalid for other
    reasons"; also a token presented with the wrong scheme (RFC 9449 7.1)."""

    error = "invalid_token"
    status_code = 401


class InvalidDpopProof(ResourceError):
    """RFC 9449 7.1 ``invalid_dpop_proof``: the proof is missing, malformed, replayed, made
    with another key than the token is bound to, or for another request."""

    error = "invalid_dpop_proof"
    status_code = 401

    def __init__(self, description: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description, scheme="DPoP", headers=headers)


class InsufficientAuthorizationDetails(ResourceError):
    """403: the token is valid but none of its ``authorization_details`` items (RFC 9396)
    covers the action. RFC 9396 itself defines no resource-server error; this code is the one
    proposed for exactly this case in draft-zehavi-oauth-rar-metadata, and RFC 6750 3.1 uses
    403 for its sibling ``insufficient_scope``."""

    error = "insufficient_authorization_details"
    status_code = 403

    def __init__(
        self,
        description: str,
        *,
        type_: str,
        fact: str | None,
        scheme: Scheme = "Bearer",
    ) -> None:
        super().__init__(description, scheme=scheme)
        self.type = type_
        #: The fact that did not fit (None when no item of the type was granted at all).
        self.fact = fact


class TemporarilyUnavailable(ResourceError):
    """503: the authorization server could not be asked (keys, metadata or introspection).
    Not the client's fault, so no challenge."""

    error = "temporarily_unavailable"
    status_code = 503
    challenges = False

    def __init__(self, description: str, *, retry_after: int = 5) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after)})


def _quoted(value: str) -> str:
    return '"' + _UNSAFE_IN_CHALLENGE.sub("?", value) + '"'


def _challenge(scheme: Scheme, params: Sequence[tuple[str, str]]) -> str:
    if not params:
        return scheme
    return scheme + " " + ", ".join(f"{name}={_quoted(value)}" for name, value in params)


def www_authenticate(
    error: ResourceError | None,
    *,
    schemes: Sequence[Scheme],
    dpop_algs: Sequence[str],
    realm: str | None = None,
) -> str | None:
    """The ``WWW-Authenticate`` value: one challenge per accepted scheme (RFC 9110 11.6.1
    allows several in one field), the one the refusal is about first and carrying its error.
    None when the refusal takes no challenge."""
    if error is not None and not error.challenges:
        return None
    ordered = list(schemes)
    if error is not None and error.scheme in ordered:
        ordered.remove(error.scheme)
        ordered.insert(0, error.scheme)
    challenges = []
    for scheme in ordered:
        params: list[tuple[str, str]] = []
        if realm is not None:
            params.append(("realm", realm))
        if error is not None and error.names_error_in_challenge and scheme == error.scheme:
            params += [("error", error.error), ("error_description", error.description)]
        if scheme == "DPoP":
            # RFC 9449 7.1: "algs" lists the proof algorithms this resource server accepts.
            params.append(("algs", " ".join(dpop_algs)))
        challenges.append(_challenge(scheme, params))
    return ", ".join(challenges)

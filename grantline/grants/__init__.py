"""Token endpoint grants, registered by ``grant_type`` in ``create_app``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from grantline.context import Context
from grantline.models import Client

__all__ = ["GrantHandler", "TokenRequest"]


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """An authenticated token request."""

    client: Client
    params: Mapping[str, str]
    #: Thumbprint of the key a valid DPoP proof was made with (RFC 9449), if any.
    dpop_jkt: str | None = None


#: (context, request) -> token response body.
GrantHandler = Callable[[Context, TokenRequest], Awaitable[dict[str, Any]]]

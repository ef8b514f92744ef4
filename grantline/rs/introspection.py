"""Asking the authorization server about a token (RFC 7662), as a resource server client.

The client must be registered with ``grantline clients add ... --can-introspect``; any other
client learns only about its own tokens, so every other token would look inactive.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from grantline.rs.errors import InvalidToken, TemporarilyUnavailable
from grantline.rs.transport import UnusableAnswer, request_json

__all__ = ["introspect"]

log = logging.getLogger("grantline.rs")


async def introspect(
    http: httpx.AsyncClient, endpoint: str, token: str, *, authorization: str
) -> dict[str, Any]:
    """The introspection answer for an active token; ``InvalidToken`` for an inactive one."""
    try:
        answer = await request_json(
            http,
            "POST",
            endpoint,
            headers={"authorization": authorization},
            data={"token": token, "token_type_hint": "access_token"},
        )
    except (httpx.HTTPError, UnusableAnswer) as exc:
        # A 401 here means this resource server's own credentials are wrong: its operator
        # must hear of it, and the client must not be told its token is bad.
        log.error("introspection at %s failed: %s", endpoint, exc)
        raise TemporarilyUnavailable("The access token cannot be checked right now.") from None
    if not isinstance(answer, dict):
        log.error("introspection at %s answered with no JSON object", endpoint)
        raise TemporarilyUnavailable("The access token cannot be checked right now.")
    if answer.get("active") is not True:
        raise InvalidToken("The access token is not active.")
    return answer

"""Token introspection (RFC 7662).

Only authenticated clients may ask. A client learns about its own tokens; a client registered
as a resource server (``can_introspect``) about any. Everything else is ``{"active": false}``,
exactly like an unknown, expired or revoked token, so introspection cannot be used to scan.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from grantline.context import Context
from grantline.endpoints._common import authenticate, context_of
from grantline.endpoints._tokens import find_token
from grantline.errors import InvalidClient, InvalidRequest
from grantline.models import Client
from grantline.ratelimit.guard import limit_caller, limit_client
from grantline.web.forms import read_form
from grantline.web.responses import json_response

__all__ = ["introspect"]

_INACTIVE: dict[str, Any] = {"active": False}


async def introspect(request: Request) -> Response:
    """POST /introspect."""
    ctx = context_of(request)
    params = await read_form(request, ctx.settings.max_body_bytes)
    await limit_caller(ctx, request, "introspect", params)
    caller = await authenticate(ctx, request, params)
    if caller.auth_method == "none":
        # RFC 7662 2.1 wants the caller authorized; a client_id alone proves nothing.
        raise InvalidClient("Introspection needs client authentication, not a public client_id.")
    await limit_client(ctx, "introspect", caller.client_id)
    value = params.get("token")
    if value is None:
        raise InvalidRequest("token is required.")
    return json_response(await _describe(ctx, caller, value, params.get("token_type_hint")))


def _token_type(kind: str, jkt: str | None) -> str:
    if kind == "refresh_token":
        return "refresh_token"
    return "DPoP" if jkt is not None else "Bearer"


async def _describe(ctx: Context, caller: Client, value: str, hint: str | None) -> dict[str, Any]:
    now = ctx.clock()
    async with ctx.store.reader() as tx:
        token = await find_token(ctx, tx, value, hint)
        if token is None:
            return _INACTIVE
        own = token.client_id == caller.client_id
        # A resource server learns about access tokens; refresh tokens are only the client's.
        if not own and not (caller.can_introspect and token.kind == "access_token"):
            return _INACTIVE
        grant = await tx.get_grant(token.grant_id)
    if (
        grant is None
        or grant.revoked_at is not None
        or token.revoked_at is not None
        or token.consumed_at is not None
        or now >= token.expires_at
    ):
        return _INACTIVE
    audience = token.audience or (
        (ctx.settings.default_audience,) if token.kind == "access_token" else ()
    )
    body: dict[str, Any] = {
        "active": True,
        "iss": ctx.settings.issuer,
        "client_id": token.client_id,
        "sub": grant.user_id,
        "iat": token.created_at,
        "exp": token.expires_at,
        "token_type": _token_type(token.kind, token.jkt),
    }
    if token.jkt is not None:
        # RFC 9449 6.2: the confirmation a resource server checks the DPoP proof against.
        body["cnf"] = {"jkt": token.jkt}
    if token.scopes:
        body["scope"] = " ".join(token.scopes)
    if audience:
        body["aud"] = audience[0] if len(audience) == 1 else list(audience)
    if token.jti:
        body["jti"] = token.jti
    if token.authorization_details:
        body["authorization_details"] = list(token.authorization_details)
    return body

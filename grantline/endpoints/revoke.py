"""Token revocation (RFC 7009).

Revoking a refresh token revokes its whole grant, access tokens included (RFC 7009 2.1: "If
the token passed to the request is a refresh token ... the authorization server SHOULD also
invalidate all access tokens based on the same authorization grant"). Unknown tokens answer 200;
another client's token is refused and the attempt audited.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from grantline.audit import event
from grantline.context import Context
from grantline.endpoints._common import authenticate, context_of
from grantline.endpoints._tokens import find_token
from grantline.errors import InvalidRequest, OAuthError, UnauthorizedClient
from grantline.models import Client
from grantline.web.forms import read_form
from grantline.web.responses import NO_STORE

__all__ = ["revoke"]


async def revoke(request: Request) -> Response:
    """POST /revoke."""
    ctx = context_of(request)
    params = await read_form(request, ctx.settings.max_body_bytes)
    client = await authenticate(ctx, request, params)
    value = params.get("token")
    if value is None:
        raise InvalidRequest("token is required.")
    refusal = await _revoke(ctx, client, value, params.get("token_type_hint"))
    if refusal is not None:
        raise refusal
    return Response(status_code=200, headers=NO_STORE)


async def _revoke(ctx: Context, client: Client, value: str, hint: str | None) -> OAuthError | None:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        token = await find_token(ctx, tx, value, hint)
        if token is None:
            return None
        # The grant's pushed request puts these events in its authorization's audit lane.
        grant = await tx.get_grant(token.grant_id)
        request_id = None if grant is None else grant.request_id
        if token.client_id != client.client_id:
            await tx.append(
                event(
                    "token.revocation_refused",
                    now,
                    client_id=client.client_id,
                    grant_id=token.grant_id,
                    request_id=request_id,
                    owner_client_id=token.client_id,
                )
            )
            return UnauthorizedClient("The token was not issued to this client.")
        if token.kind == "refresh_token":
            if await tx.revoke_grant(token.grant_id, now):
                await tx.append(
                    event(
                        "grant.revoked",
                        now,
                        client_id=client.client_id,
                        grant_id=token.grant_id,
                        request_id=request_id,
                        reason="refresh token revoked by the client",
                    )
                )
        elif await tx.revoke_token(token.token_digest, now):
            await tx.append(
                event(
                    "token.revoked",
                    now,
                    client_id=client.client_id,
                    grant_id=token.grant_id,
                    request_id=request_id,
                    access_token_jti=token.jti,
                )
            )
    return None

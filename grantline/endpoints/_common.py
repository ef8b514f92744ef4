"""Steps shared by the back-channel endpoints."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from grantline.audit import event
from grantline.client_auth import authenticate_client, present_credentials
from grantline.context import Context
from grantline.errors import InvalidClient
from grantline.models import AuthorizationRequest, Client
from grantline.protocol.authorization_request import validate_authorization_request

__all__ = ["authenticate", "context_of", "validate_request"]


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


async def authenticate(ctx: Context, request: Request, params: Mapping[str, str]) -> Client:
    """Authenticate the calling client; a failure against a registered client is audited."""
    presented = present_credentials(request.headers.get("authorization"), params)
    try:
        async with ctx.store.reader() as tx:
            return await authenticate_client(tx, ctx.digester, presented)
    except InvalidClient as exc:
        # Only failures against registered clients are kept: they are attacks on someone;
        # unknown client_ids would let anyone fill the audit trail.
        if exc.detail != "unknown client_id":
            async with ctx.store.transaction() as tx:
                await tx.append(
                    event(
                        "client.authentication_failed",
                        ctx.clock(),
                        client_id=presented.client_id,
                        endpoint=request.url.path,
                        method=presented.method,
                        reason=exc.detail,
                    )
                )
        raise


def validate_request(
    ctx: Context, params: Mapping[str, str], client: Client, *, pushed: bool
) -> AuthorizationRequest:
    """The shared authorization request validator, with this server's scopes and types."""
    return validate_authorization_request(
        params,
        client,
        known_scopes=ctx.settings.scopes,
        detail_types=ctx.detail_types,
        pushed=pushed,
    )

"""Steps shared by the back-channel endpoints."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from grantline.audit import event
from grantline.client_auth import (
    PresentedCredentials,
    authenticate_client,
    present_credentials,
    verify_assertion,
)
from grantline.context import Context
from grantline.errors import InvalidClient
from grantline.models import AuthorizationRequest, Client
from grantline.protocol.authorization_request import validate_authorization_request
from grantline.protocol.jose import JoseFailure, read_header

__all__ = ["authenticate", "context_of", "validate_request"]


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


async def authenticate(ctx: Context, request: Request, params: Mapping[str, str]) -> Client:
    """Authenticate the calling client; a failure against a registered client is audited."""
    presented = present_credentials(request.headers.get("authorization"), params)
    try:
        async with ctx.store.reader() as tx:
            client = await ctx.clients.get(tx, presented.client_id)
        client = authenticate_client(client, ctx.digester, presented)
        if ctx.settings.fapi2 and client.auth_method != "private_key_jwt":
            raise InvalidClient(
                "The FAPI 2.0 profile requires private_key_jwt client authentication.",
                detail="fapi2: method not allowed",
            )
        if presented.method == "private_key_jwt":
            await _check_assertion(ctx, request, client, presented)
        return client
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


async def _check_assertion(
    ctx: Context, request: Request, client: Client, presented: PresentedCredentials
) -> None:
    assert presented.assertion is not None
    try:
        kid = read_header(presented.assertion).get("kid")
        keys = await ctx.client_keys.keys_for(client, kid if isinstance(kid, str) else None)
    except JoseFailure as exc:
        raise InvalidClient(f"Client assertion: {exc}.", detail=f"assertion: {exc}") from None
    settings = ctx.settings
    # FAPI 2.0 5.3.2.1: the audience is the issuer identifier and nothing else.
    audiences = {settings.issuer}
    if not settings.fapi2:
        audiences |= {settings.endpoint(request.url.path), settings.endpoint("/token")}
    now = ctx.clock()
    jti, exp = verify_assertion(
        presented, keys, audiences=audiences, now=now, max_lifetime=settings.max_jwt_lifetime
    )
    async with ctx.store.transaction() as tx:
        if not await tx.remember_once(f"client_assertion:{client.client_id}:{jti}", exp, now):
            raise InvalidClient("Client assertion was already used.", detail="assertion replayed")


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

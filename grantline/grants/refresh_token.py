"""The refresh token grant with rotation and reuse detection (RFC 6749 6, RFC 9700 4.14.2)."""

from __future__ import annotations

from typing import Any

from grantline.context import Context
from grantline.errors import InvalidGrant, InvalidRequest, OAuthError
from grantline.grants import TokenRequest
from grantline.grants._tokens import (
    TokenShape,
    key_binding_refusal,
    mint_tokens,
    narrow_or_error,
    refuse_replay,
    token_event,
)
from grantline.storage import Transaction
from grantline.tokens.ordered import refresh_token_id

__all__ = ["refresh"]


async def refresh(ctx: Context, request: TokenRequest) -> dict[str, Any]:
    """grant_type=refresh_token: rotate the refresh token, reuse revokes the whole grant."""
    presented = request.params.get("refresh_token")
    if presented is None:
        raise InvalidRequest("refresh_token is required.")
    digest = refresh_token_id(ctx.digester, presented)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        outcome = await _refresh(ctx, tx, request, digest, now)
    if isinstance(outcome, OAuthError):
        raise outcome
    return outcome


async def _refresh(
    ctx: Context, tx: Transaction, request: TokenRequest, digest: str, now: int
) -> dict[str, Any] | OAuthError:
    client, params = request.client, request.params
    token = await tx.get_token(digest)
    if token is None or token.kind != "refresh_token" or token.client_id != client.client_id:
        return InvalidGrant("The refresh token is invalid.")
    # RFC 9449 5: a public client's refresh token is bound to its DPoP key.
    refusal = key_binding_refusal(token.jkt, request.dpop_jkt)
    if refusal is not None:
        return refusal
    if token.revoked_at is not None:
        return InvalidGrant("The refresh token was revoked.")
    if now >= token.expires_at:
        return InvalidGrant("The refresh token has expired.")
    allowed = TokenShape(token.scopes, token.audience, token.authorization_details)
    shape = narrow_or_error(params, allowed, ctx.settings.scopes)
    if isinstance(shape, OAuthError):
        return shape
    await tx.lock_grant(token.grant_id)
    grant = await tx.get_grant(token.grant_id)
    if grant is None or grant.revoked_at is not None:
        return InvalidGrant("The grant was revoked.")
    if not await tx.consume_token(digest, client.client_id, now):
        # A rotated token came back: either the client or an attacker holds a stale copy, and
        # the server cannot tell which, so the whole family goes (RFC 9700 4.14.2).
        return await refuse_replay(
            tx,
            "refresh_token.reused",
            client.client_id,
            token.grant_id,
            now,
            "The refresh token was already used.",
        )
    assert grant is not None
    issued = await mint_tokens(ctx, tx, client, grant, shape, request.dpop_jkt, now)
    await tx.append(token_event(ctx, "token.refreshed", client, grant, shape, issued, now))
    return issued.body

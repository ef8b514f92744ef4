"""The refresh token grant with rotation and reuse detection (RFC 6749 6, RFC 9700 4.14.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grantline.audit import event
from grantline.context import Context
from grantline.errors import InvalidGrant, InvalidRequest, OAuthError
from grantline.grants._tokens import mint_tokens
from grantline.models import Client
from grantline.protocol.scope import check_scope_subset, parse_scope
from grantline.storage import Transaction

__all__ = ["refresh"]


async def refresh(ctx: Context, client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """grant_type=refresh_token: rotate the refresh token, reuse revokes the whole grant."""
    presented = params.get("refresh_token")
    if presented is None:
        raise InvalidRequest("refresh_token is required.")
    digest = ctx.digester.digest("refresh_token", presented)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        outcome = await _refresh(ctx, tx, client, params, digest, now)
    if isinstance(outcome, OAuthError):
        raise outcome
    return outcome


async def _refresh(
    ctx: Context,
    tx: Transaction,
    client: Client,
    params: Mapping[str, str],
    digest: str,
    now: int,
) -> dict[str, Any] | OAuthError:
    token = await tx.get_token(digest)
    if token is None or token.kind != "refresh_token" or token.client_id != client.client_id:
        return InvalidGrant("The refresh token is invalid.")
    if token.revoked_at is not None:
        return InvalidGrant("The refresh token was revoked.")
    if now >= token.expires_at:
        return InvalidGrant("The refresh token has expired.")
    try:
        scopes = parse_scope(params.get("scope"), ctx.settings.scopes, ()) or token.scopes
        check_scope_subset(scopes, token.scopes)
    except OAuthError as exc:
        return exc
    if not await tx.consume_token(digest, client.client_id, now):
        # A rotated token came back: either the client or an attacker holds a stale copy, and
        # the server cannot tell which, so the whole family goes (RFC 9700 4.14.2).
        revoked = await tx.revoke_grant(token.grant_id, now)
        await tx.append(
            event(
                "refresh_token.reused",
                now,
                client_id=client.client_id,
                grant_id=token.grant_id,
                grant_revoked=revoked,
            )
        )
        return InvalidGrant("The refresh token was already used.")
    grant = await tx.get_grant(token.grant_id)
    if grant is None or grant.revoked_at is not None:
        return InvalidGrant("The grant was revoked.")
    body, access_digest, refresh_digest = await mint_tokens(ctx, tx, grant, scopes, now)
    await tx.append(
        event(
            "token.refreshed",
            now,
            client_id=client.client_id,
            user_id=grant.user_id,
            grant_id=grant.grant_id,
            scopes=list(scopes),
            access_token_id=access_digest[:32],
            refresh_token_id=refresh_digest[:32],
        )
    )
    return body

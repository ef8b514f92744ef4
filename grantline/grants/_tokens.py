"""Minting the access and refresh tokens of a token response (RFC 6749 5.1)."""

from __future__ import annotations

from typing import Any

from grantline.context import Context
from grantline.models import Grant, Token
from grantline.storage import Transaction
from grantline.tokens.digest import new_secret

__all__ = ["mint_tokens"]


async def mint_tokens(
    ctx: Context, tx: Transaction, grant: Grant, scopes: tuple[str, ...], now: int
) -> tuple[dict[str, Any], str, str]:
    """Store a new access token and refresh token for ``grant``.

    Returns the response body and the digests of both tokens (for the audit event). The refresh
    token keeps the grant's full scope so that a narrowed access token can later be widened
    back up to, never beyond, what the person approved.
    """
    access, refresh = new_secret(), new_secret()
    access_digest = ctx.digester.digest("access_token", access)
    refresh_digest = ctx.digester.digest("refresh_token", refresh)
    settings = ctx.settings
    await tx.add_token(
        Token(
            token_digest=access_digest,
            kind="access_token",
            grant_id=grant.grant_id,
            client_id=grant.client_id,
            scopes=scopes,
            created_at=now,
            expires_at=now + settings.access_token_lifetime,
        )
    )
    await tx.add_token(
        Token(
            token_digest=refresh_digest,
            kind="refresh_token",
            grant_id=grant.grant_id,
            client_id=grant.client_id,
            scopes=grant.scopes,
            created_at=now,
            expires_at=now + settings.refresh_token_lifetime,
        )
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": settings.access_token_lifetime,
        "refresh_token": refresh,
        "scope": " ".join(scopes),
    }
    return body, access_digest, refresh_digest

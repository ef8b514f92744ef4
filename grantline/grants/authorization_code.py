"""The authorization code grant (RFC 6749 4.1.3, RFC 7636 4.6, RFC 9700 4.5)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from grantline.audit import event
from grantline.context import Context
from grantline.errors import InvalidGrant, InvalidRequest, OAuthError
from grantline.grants import TokenRequest
from grantline.grants._tokens import (
    TokenShape,
    grant_shape,
    key_binding_refusal,
    mint_tokens,
    narrow_or_error,
    refuse_replay,
    token_event,
)
from grantline.models import AuthorizationCode, Grant, StoredRequest
from grantline.protocol import pkce
from grantline.storage import Transaction
from grantline.tokens.digest import new_secret

__all__ = ["issue_code", "redeem_code"]


async def issue_code(
    ctx: Context,
    tx: Transaction,
    stored: StoredRequest,
    user_id: str,
    approved_details: tuple[dict[str, Any], ...],
    now: int,
) -> str:
    """Create the grant (with only the approved authorization details) and its code inside the
    decision's transaction; returns the code."""
    req = stored.request
    grant = Grant(
        grant_id=secrets.token_hex(16),
        client_id=stored.client_id,
        user_id=user_id,
        scopes=req.scopes,
        request_id=stored.request_id,
        created_at=now,
        authorization_details=approved_details,
        resources=req.resources,
    )
    code = new_secret()
    record = AuthorizationCode(
        code_digest=ctx.digester.digest("code", code),
        grant_id=grant.grant_id,
        client_id=stored.client_id,
        redirect_uri=req.redirect_uri,
        code_challenge=req.code_challenge,
        code_challenge_method=req.code_challenge_method,
        created_at=now,
        expires_at=now + ctx.settings.code_lifetime,
        dpop_jkt=req.dpop_jkt,
        redirect_uri_sent="redirect_uri" in stored.raw_params,
    )
    await tx.add_grant(grant)
    await tx.add_code(record)
    await tx.append(
        event(
            "code.issued",
            now,
            client_id=stored.client_id,
            user_id=user_id,
            request_id=stored.request_id,
            grant_id=grant.grant_id,
            scopes=list(req.scopes),
            resources=list(req.resources),
            authorization_details=ctx.redactor.details(approved_details),
            expires_at=record.expires_at,
        )
    )
    return code


async def redeem_code(ctx: Context, request: TokenRequest) -> dict[str, Any]:
    """grant_type=authorization_code."""
    params = request.params
    code = params.get("code")
    if code is None:
        raise InvalidRequest("code is required.")
    digest = ctx.digester.digest("code", code)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        # Refusals that change state (a burnt code, a revoked grant) are returned, not raised,
        # so that the transaction commits them with their audit events.
        outcome = await _redeem(ctx, tx, request, digest, now)
    if isinstance(outcome, OAuthError):
        raise outcome
    return outcome


def _refusal_after_consuming(
    record: AuthorizationCode, params: Mapping[str, str], now: int
) -> OAuthError | None:
    if now >= record.expires_at:
        return InvalidGrant("The authorization code has expired.")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None and record.redirect_uri_sent:
        return InvalidRequest("redirect_uri is required: the authorization request named it.")
    if redirect_uri is not None and redirect_uri != record.redirect_uri:
        return InvalidGrant("redirect_uri does not match the authorization request.")
    try:
        pkce.verify(params.get("code_verifier"), record.code_challenge)
    except OAuthError as exc:
        return exc
    return None


async def _redeem(
    ctx: Context, tx: Transaction, request: TokenRequest, digest: str, now: int
) -> dict[str, Any] | OAuthError:
    client, params = request.client, request.params
    record = await tx.get_code(digest)
    # The client binding is checked before consuming: another client cannot burn this code.
    if record is None or record.client_id != client.client_id:
        return InvalidGrant("The authorization code is invalid.")
    # So is the key binding (RFC 9449 10): without the key, the code is not the caller's to burn.
    refusal = key_binding_refusal(record.dpop_jkt, request.dpop_jkt)
    if refusal is not None:
        return refusal
    await tx.lock_grant(record.grant_id)
    grant = await tx.get_grant(record.grant_id)
    shape: TokenShape | None = None
    if record.consumed_at is None and grant is not None and grant.revoked_at is None:
        # Narrowing is checked before the code is consumed: asking for a resource or item that
        # was not granted is the client's mistake, and must not cost the person a new consent.
        narrowed = narrow_or_error(params, grant_shape(grant), ctx.settings.scopes)
        if isinstance(narrowed, OAuthError):
            return narrowed
        shape = narrowed
    if not await tx.consume_code(digest, client.client_id, now):
        # RFC 6749 4.1.2: "If an authorization code is used more than once, the authorization
        # server MUST deny the request and SHOULD revoke ... all tokens previously issued".
        return await refuse_replay(
            tx,
            "code.replayed",
            client.client_id,
            record.grant_id,
            now,
            "The authorization code was already used.",
        )
    refusal = _refusal_after_consuming(record, params, now)
    if refusal is None and (grant is None or shape is None):
        refusal = InvalidGrant("The grant was revoked.")
    if refusal is not None:
        # The code is spent: record why, so that a retry reads as what it is in the trail.
        await tx.append(
            event(
                "code.redemption_failed",
                now,
                client_id=client.client_id,
                grant_id=record.grant_id,
                error=refusal.error,
                reason=refusal.detail,
            )
        )
        return refusal
    assert grant is not None and shape is not None
    issued = await mint_tokens(ctx, tx, client, grant, shape, request.dpop_jkt, now)
    await tx.append(token_event(ctx, "token.issued", client, grant, shape, issued, now))
    return issued.body

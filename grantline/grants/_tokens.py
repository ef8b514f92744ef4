"""Minting the access and refresh tokens of a token response (RFC 6749 5.1, RFC 9068)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grantline.audit import event
from grantline.context import Context
from grantline.errors import InvalidDpopProof, InvalidGrant, OAuthError
from grantline.models import AuditEvent, Client, Grant, Token
from grantline.protocol.rar import check_details_subset, parse_authorization_details
from grantline.protocol.resource import parse_resources
from grantline.protocol.scope import check_scope_subset, parse_scope
from grantline.storage import Transaction
from grantline.tokens.jwt import sign_access_token
from grantline.tokens.ordered import (
    access_token_id,
    new_jti,
    new_refresh_token,
    refresh_token_id,
)

__all__ = [
    "Issued",
    "TokenShape",
    "grant_shape",
    "key_binding_refusal",
    "mint_tokens",
    "narrow",
    "narrow_or_error",
    "refuse_replay",
    "token_event",
]


@dataclass(frozen=True, slots=True)
class TokenShape:
    """What one access token is for: never more than the grant (or refresh token) allows."""

    scopes: tuple[str, ...]
    resources: tuple[str, ...]
    authorization_details: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Issued:
    body: dict[str, Any]
    access_digest: str
    refresh_digest: str
    jti: str
    audience: tuple[str, ...]
    dpop_jkt: str | None


def narrow(params: Mapping[str, str], allowed: TokenShape, known_scopes: Any) -> TokenShape:
    """Apply the token request's ``scope``, ``resource`` (RFC 8707 2.2) and
    ``authorization_details`` (RFC 9396 6) to what is allowed: each may narrow, none widen."""
    scopes = allowed.scopes
    if "scope" in params:
        scopes = parse_scope(params["scope"], known_scopes, ())
        check_scope_subset(scopes, allowed.scopes)
    resources = allowed.resources
    if "resource" in params:
        # Only granted resources are "allowed" here, so this refuses any widening.
        resources = parse_resources(params["resource"], allowed.resources)
    details = allowed.authorization_details
    if "authorization_details" in params:
        details = parse_authorization_details(params["authorization_details"])
        check_details_subset(details, allowed.authorization_details)
    return TokenShape(scopes, resources, details)


def narrow_or_error(
    params: Mapping[str, str], allowed: TokenShape, known_scopes: Any
) -> TokenShape | OAuthError:
    try:
        return narrow(params, allowed, known_scopes)
    except OAuthError as exc:
        return exc


def key_binding_refusal(bound_jkt: str | None, proof_jkt: str | None) -> OAuthError | None:
    """RFC 9449 5 and 10: a code or refresh token bound to a key needs a proof with that key."""
    if bound_jkt is None or bound_jkt == proof_jkt:
        return None
    if proof_jkt is None:
        return InvalidDpopProof("A DPoP proof with the bound key is required.")
    return InvalidGrant("The DPoP proof was made with another key than the one bound here.")


async def mint_tokens(
    ctx: Context,
    tx: Transaction,
    client: Client,
    grant: Grant,
    shape: TokenShape,
    dpop_jkt: str | None,
    now: int,
) -> Issued:
    """Store and sign a new access token shaped by ``shape`` and a refresh token that keeps
    the whole grant, so a narrowed access token can later be widened back up to, never beyond,
    what the person approved. With ``dpop_jkt`` the access token is DPoP-bound (``cnf.jkt``)
    and, for public clients, so is the refresh token (RFC 9449 section 5)."""
    settings = ctx.settings
    audience = shape.resources or (settings.default_audience,)
    jti = new_jti()
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": grant.user_id,
        "aud": audience[0] if len(audience) == 1 else list(audience),
        "exp": now + settings.access_token_lifetime,
        "iat": now,
        "jti": jti,
        "client_id": grant.client_id,
    }
    if shape.scopes:
        claims["scope"] = " ".join(shape.scopes)
    if shape.authorization_details:
        claims["authorization_details"] = list(shape.authorization_details)
    if dpop_jkt is not None:
        claims["cnf"] = {"jkt": dpop_jkt}
    access = await sign_access_token(
        tx, settings.access_token_signing_alg, claims, now, secret=settings.secret_key
    )
    refresh = new_refresh_token()
    access_digest = access_token_id(ctx.digester, access)
    refresh_digest = refresh_token_id(ctx.digester, refresh)
    await tx.add_token(
        Token(
            token_digest=access_digest,
            kind="access_token",
            grant_id=grant.grant_id,
            client_id=grant.client_id,
            scopes=shape.scopes,
            created_at=now,
            expires_at=now + settings.access_token_lifetime,
            audience=audience,
            authorization_details=shape.authorization_details,
            jti=jti,
            jkt=dpop_jkt,
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
            audience=grant.resources,
            authorization_details=grant.authorization_details,
            jkt=dpop_jkt if client.auth_method == "none" else None,
        )
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "DPoP" if dpop_jkt is not None else "Bearer",
        "expires_in": settings.access_token_lifetime,
        "refresh_token": refresh,
    }
    if shape.scopes:
        # RFC 6749 3.3: a scope value has at least one token, so none means no parameter.
        body["scope"] = " ".join(shape.scopes)
    if shape.authorization_details:
        body["authorization_details"] = list(shape.authorization_details)
    return Issued(body, access_digest, refresh_digest, jti, audience, dpop_jkt)


def grant_shape(grant: Grant) -> TokenShape:
    return TokenShape(grant.scopes, grant.resources, grant.authorization_details)


def token_event(
    ctx: Context,
    type_: str,
    client: Client,
    grant: Grant,
    shape: TokenShape,
    issued: Issued,
    now: int,
) -> AuditEvent:
    """The audit event for issued tokens: what they allow, never their values."""
    return event(
        type_,
        now,
        client_id=client.client_id,
        user_id=grant.user_id,
        request_id=grant.request_id,
        grant_id=grant.grant_id,
        scopes=list(shape.scopes),
        audience=list(issued.audience),
        authorization_details=ctx.redactor.details(shape.authorization_details),
        access_token_jti=issued.jti,
        refresh_token_id=issued.refresh_digest[:32],
        token_type=issued.body["token_type"],
        dpop_jkt=issued.dpop_jkt,
        expires_in=issued.body["expires_in"],
    )


async def refuse_replay(
    tx: Transaction, type_: str, client_id: str, grant_id: str, now: int, message: str
) -> OAuthError:
    """A single-use credential came back: revoke everything its grant produced, record it,
    and refuse. The server cannot tell the legitimate holder from the thief, so both lose."""
    revoked = await tx.revoke_grant(grant_id, now)
    grant = await tx.get_grant(grant_id)
    await tx.append(
        event(
            type_,
            now,
            client_id=client_id,
            grant_id=grant_id,
            request_id=None if grant is None else grant.request_id,
            grant_revoked=revoked,
        )
    )
    return InvalidGrant(message)

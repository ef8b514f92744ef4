"""The audit event vocabulary, named ``<entity>.<verb>``.

Events identify a pushed request by its digest (``request_id``), never by the request_uri, and
carry no secret: no code, token, password or client secret is ever written here.
"""

from __future__ import annotations

from typing import Any

from grantline.models import AuditEvent

__all__ = ["EVENT_TYPES", "event"]

EVENT_TYPES: dict[str, str] = {
    "pushed_request.accepted": "A client pushed a valid authorization request (RFC 9126).",
    "pushed_request.refused": "A client's pushed authorization request was refused.",
    "authorization_request.accepted": "A plain front-channel authorization request was accepted.",
    "authorization_request.refused": "An authorization request was refused at /authorize.",
    "authorization_request.substitution_refused": (
        "Front-channel parameters differed from the pushed request; the attempt was refused."
    ),
    "authorization_request.client_mismatch": (
        "A request_uri pushed by one client was presented with another client_id."
    ),
    "authorization_request.browser_mismatch": (
        "A request_uri already opened in one browser was presented in another; refused."
    ),
    "interaction.started": "A person opened a stored request; their interaction began.",
    "client.authentication_failed": "A client failed to authenticate.",
    "user.login_succeeded": "A person signed in.",
    "user.login_failed": "A sign-in attempt failed.",
    "user.login_throttled": "A sign-in attempt was refused unchecked: too many failures.",
    "consent.shown": "The consent page was shown; the document and its SHA-256 are recorded.",
    "consent.decided": "The person approved or denied the request.",
    "code.issued": "An authorization code was issued.",
    "code.replayed": "A used authorization code was presented again; its grant was revoked.",
    "code.redemption_failed": "A code was consumed but refused (expired, PKCE, redirect_uri).",
    "token.issued": "Access and refresh tokens were issued for an authorization code.",
    "token.refreshed": "A refresh token was rotated and new tokens were issued.",
    "refresh_token.reused": "A rotated refresh token was presented again; its grant was revoked.",
    "grant.revoked": "A grant and every token under it were revoked.",
    "token.revoked": "An access token was revoked by its client (RFC 7009).",
    "token.revocation_refused": "A client tried to revoke another client's token.",
    "client.registered": "A client was registered.",
    "client.updated": "A client's policy changed.",
    "client.secret_rotated": "A client's secret was replaced.",
    "client.removed": "A client was removed.",
    "user.added": "A user was added.",
    "user.removed": "A user was removed.",
    "user.password_changed": "A user's password was replaced.",
    "signing_key.created": "A signing key was created.",
    "storage.pruned": "Expired requests, sessions, codes and tokens were deleted.",
    "signing_key.rotated": "A new signing key took over; older ones only verify until retired.",
    "resource.action_allowed": "A resource server reported an action it allowed under a token.",
    "resource.action_refused": "A resource server reported an action it refused under a token.",
    "audit.bodies_pruned": "Bodies of events past their retention were dropped; digests remain.",
}


def event(
    type_: str,
    at: int,
    *,
    client_id: str | None = None,
    user_id: str | None = None,
    request_id: str | None = None,
    grant_id: str | None = None,
    **data: Any,
) -> AuditEvent:
    """Build an event of a known type; an unknown type is a programming error."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown audit event type {type_!r}")
    return AuditEvent(
        type=type_,
        at=at,
        client_id=client_id,
        user_id=user_id,
        request_id=request_id,
        grant_id=grant_id,
        data={k: v for k, v in data.items() if v is not None},
    )

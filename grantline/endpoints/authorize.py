"""The authorization endpoint (RFC 6749 3.1, RFC 9126 section 4).

With a ``request_uri`` it follows the pushed-request lifecycle: the client binding is checked
before anything else, then expiry and single use, then that the browser carries no substituted
parameters, then the stored request is re-validated against the client's current policy
(RFC 9126 7.4). Only then does the person see a login or consent page. Without a
``request_uri`` it accepts a plain request only where neither the server nor the client
requires PAR. Either way the request ends up stored, and an interaction bound to this browser
carries the person through login and consent.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from grantline.audit import event
from grantline.context import Context
from grantline.endpoints._common import context_of, validate_request
from grantline.errors import InvalidRequestUri, OAuthError, PageOnlyInvalidRequest
from grantline.models import Client, Interaction, StoredRequest
from grantline.policy.par import par_required
from grantline.protocol.par import (
    check_front_channel_params,
    new_reference,
    reference_id,
    request_uri_secret,
)
from grantline.protocol.redirect_uri import resolve_redirect_uri
from grantline.tokens.digest import new_secret
from grantline.web.browser import BROWSER_COOKIE, cookie, set_cookie
from grantline.web.errors import page_endpoint
from grantline.web.forms import read_query
from grantline.web.responses import authorization_response

__all__ = ["authorize"]


@page_endpoint
async def authorize(request: Request) -> Response:
    """GET /authorize: resolve the stored request, then hand the person to an interaction."""
    ctx = context_of(request)
    params = read_query(request, ctx.settings.max_query_bytes)
    client = await _load_client(ctx, params)
    if "request_uri" in params:
        stored = await _load_pushed(ctx, client, params)
    else:
        plain = await _accept_plain(ctx, client, params)
        if isinstance(plain, Response):
            return plain
        stored = plain
    return await _start_interaction(ctx, request, stored)


async def _load_client(ctx: Context, params: Mapping[str, str]) -> Client:
    client_id = params.get("client_id")
    if client_id is None:
        raise PageOnlyInvalidRequest("client_id is required.")
    async with ctx.store.reader() as tx:
        client = await tx.get_client(client_id)
    if client is None:
        raise PageOnlyInvalidRequest("The client is unknown.")
    return client


async def _load_pushed(ctx: Context, client: Client, params: Mapping[str, str]) -> StoredRequest:
    request_id = reference_id(ctx.digester, request_uri_secret(params["request_uri"]))
    now = ctx.clock()
    async with ctx.store.reader() as tx:
        stored = await tx.get_request(request_id)
    if stored is None or not stored.pushed:
        raise InvalidRequestUri("The request_uri is unknown.")
    refusal = _check_pushed(ctx, client, stored, params, now)
    if refusal is not None:
        error, event_type = refusal
        async with ctx.store.transaction() as tx:
            await tx.append(
                event(
                    event_type,
                    now,
                    client_id=client.client_id,
                    request_id=request_id,
                    owner_client_id=stored.client_id,
                    error=error.error,
                    reason=error.detail,
                )
            )
        raise error
    return stored


def _check_pushed(
    ctx: Context, client: Client, stored: StoredRequest, params: Mapping[str, str], now: int
) -> tuple[OAuthError, str] | None:
    """The first lifecycle rule the presented request_uri breaks, with its audit event type."""
    # Checked first, so that presenting another client's reference reveals and changes nothing.
    if stored.client_id != client.client_id:
        return InvalidRequestUri(detail="pushed by another client"), (
            "authorization_request.client_mismatch"
        )
    if stored.consumed_at is not None:
        return InvalidRequestUri(
            "The request_uri was already used.", detail="already consumed"
        ), "authorization_request.refused"
    if not stored.is_presentable(now):
        return InvalidRequestUri(
            "The request_uri has expired.", detail="expired"
        ), "authorization_request.refused"
    try:
        check_front_channel_params(params, stored.raw_params)
    except OAuthError as exc:
        return exc, "authorization_request.substitution_refused"
    try:
        revalidate(ctx, client, stored)
    except OAuthError as exc:
        return exc, "authorization_request.refused"
    return None


def revalidate(ctx: Context, client: Client, stored: StoredRequest) -> None:
    """RFC 9126 7.4: the client's policy may have changed since the push; apply the current one.

    Errors are shown as pages: the person is here, and the client's redirect_uri may be the very
    thing that is no longer allowed.
    """
    if not stored.pushed and par_required(ctx.settings, client):
        raise PageOnlyInvalidRequest(
            "This client must now use a pushed authorization request (RFC 9126).",
            detail="client policy changed: PAR required",
        )
    try:
        validate_request(ctx, stored.raw_params, client, pushed=stored.pushed)
    except OAuthError as exc:
        raise PageOnlyInvalidRequest(
            "The request no longer matches the client's registration: " + exc.description,
            detail=f"client policy changed: {exc.error}",
        ) from None


async def _accept_plain(
    ctx: Context, client: Client, params: Mapping[str, str]
) -> StoredRequest | Response:
    now = ctx.clock()
    if par_required(ctx.settings, client):
        error: OAuthError = PageOnlyInvalidRequest(
            "This client must use a pushed authorization request (RFC 9126).",
            detail="PAR required",
        )
        await _audit_plain_refusal(ctx, client, error, now)
        raise error
    redirect_uri = resolve_redirect_uri(params.get("redirect_uri"), client.redirect_uris)
    try:
        auth_request = validate_request(ctx, params, client, pushed=False)
    except OAuthError as exc:
        await _audit_plain_refusal(ctx, client, exc, now)
        if not exc.redirectable:
            raise
        return authorization_response(
            redirect_uri,
            {
                "error": exc.error,
                "error_description": exc.description,
                "state": params.get("state"),
                "iss": ctx.settings.issuer,
            },
        )
    stored = StoredRequest(
        request_id=reference_id(ctx.digester, new_reference()),
        client_id=client.client_id,
        request=auth_request,
        raw_params=dict(params),
        pushed=False,
        created_at=now,
        expires_at=now + ctx.settings.par_lifetime,
    )
    async with ctx.store.transaction() as tx:
        await tx.add_request(stored)
        await tx.append(
            event(
                "authorization_request.accepted",
                now,
                client_id=client.client_id,
                request_id=stored.request_id,
                scopes=list(auth_request.scopes),
                resources=list(auth_request.resources),
                authorization_details=ctx.redactor.details(auth_request.authorization_details),
                redirect_uri=auth_request.redirect_uri,
            )
        )
    return stored


async def _audit_plain_refusal(ctx: Context, client: Client, exc: OAuthError, now: int) -> None:
    async with ctx.store.transaction() as tx:
        await tx.append(
            event(
                "authorization_request.refused",
                now,
                client_id=client.client_id,
                error=exc.error,
                reason=exc.detail,
            )
        )


async def _start_interaction(ctx: Context, request: Request, stored: StoredRequest) -> Response:
    """Bind a new interaction to this browser and send the person to it (303, PRG)."""
    now = ctx.clock()
    browser_token = cookie(request, BROWSER_COOKIE)
    new_browser = browser_token is None
    if browser_token is None:
        browser_token = new_secret()
    token = new_secret()
    interaction = Interaction(
        interaction_id=ctx.digester.digest("interaction", token),
        request_id=stored.request_id,
        client_id=stored.client_id,
        browser_digest=ctx.digester.digest("browser", browser_token),
        created_at=now,
        expires_at=now + ctx.settings.interaction_lifetime,
    )
    async with ctx.store.transaction() as tx:
        # RFC 9126 4: one-time use, reloads allowed. A reference seen in a second browser is
        # someone racing the person (or swapping sessions), so only the first may continue.
        first_browser = await tx.mark_presented(stored.request_id, now, interaction.browser_digest)
        if first_browser:
            await tx.add_interaction(interaction)
        await tx.append(
            event(
                "interaction.started"
                if first_browser
                else "authorization_request.browser_mismatch",
                now,
                client_id=stored.client_id,
                request_id=stored.request_id,
                interaction_expires_at=interaction.expires_at if first_browser else None,
            )
        )
    if not first_browser:
        raise InvalidRequestUri(
            "This request was already opened in another browser.", detail="browser mismatch"
        )
    response = RedirectResponse(f"/interaction/{token}", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    if new_browser:
        set_cookie(
            response,
            BROWSER_COOKIE,
            browser_token,
            max_age=ctx.settings.session_lifetime,
            secure=ctx.settings.secure_cookies,
        )
    return response

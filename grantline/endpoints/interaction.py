"""Login and consent: the person's side of an authorization (RFC 6749 4.1.1 - 4.1.2).

Every step re-checks that the interaction is open, belongs to this browser, and that forms carry
this browser's CSRF token. The decision consumes the stored request and the interaction in the
same transaction that creates the grant, the code and their audit events.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from grantline.audit import event
from grantline.consent import ConsentDocument, approved_items, build_consent
from grantline.context import Context
from grantline.endpoints._common import context_of
from grantline.endpoints.authorize import revalidate
from grantline.errors import InvalidRequestUri, OAuthError, PageOnlyInvalidRequest
from grantline.grants.authorization_code import issue_code
from grantline.models import Client, Interaction, Session, StoredRequest, User
from grantline.passwords import verify_password
from grantline.ratelimit.guard import limit_caller, limit_client
from grantline.ratelimit.sign_in import SignInThrottle
from grantline.storage import Transaction
from grantline.tokens.digest import new_secret
from grantline.web.browser import (
    BROWSER_COOKIE,
    SESSION_COOKIE,
    cookie,
    csrf_token,
    csrf_valid,
    set_cookie,
)
from grantline.web.errors import page_endpoint
from grantline.web.forms import read_form
from grantline.web.pages import render
from grantline.web.responses import authorization_response

__all__ = ["decide", "login", "show_interaction"]

_MAX_CREDENTIAL_LENGTH = 1024
#: Failed passwords one sign-in page accepts before it closes (per-account and per-address
#: throttling across pages belongs to the rate limiter).
MAX_FAILED_LOGINS = 5


@dataclass(frozen=True, slots=True)
class _Loaded:
    token: str
    browser_token: str
    interaction: Interaction
    stored: StoredRequest
    client: Client


@page_endpoint
async def show_interaction(request: Request) -> Response:
    """GET /interaction/{token}: the login page, or the consent page once signed in."""
    ctx = context_of(request)
    loaded = await _load(ctx, request)
    user = await _session_user(ctx, request)
    if user is None:
        return _login_page(ctx, loaded)
    return await _consent_page(ctx, loaded, user)


@page_endpoint
async def login(request: Request) -> Response:
    """POST /interaction/{token}/login: check the password, start a session, back to GET."""
    ctx = context_of(request)
    await limit_caller(ctx, request, "login")
    loaded = await _load(ctx, request)
    form = await read_form(request, ctx.settings.max_body_bytes)
    _check_csrf(ctx, loaded, form.get("csrf_token"))
    # Only attempts that reach a password check spend the client's budget: a flood of forged
    # posts to one interaction must not shut sign-in off for everyone using the client.
    await limit_client(ctx, "login", loaded.client.client_id)
    username = form.get("username", "")[:_MAX_CREDENTIAL_LENGTH]
    password = form.get("password", "")[:_MAX_CREDENTIAL_LENGTH]
    async with ctx.store.reader() as tx:
        user = await tx.get_user_by_username(username) if username else None
    throttle = SignInThrottle.for_attempt(
        ctx,
        request,
        username,
        client_id=loaded.client.client_id,
        request_id=loaded.stored.request_id,
        user_id=user.user_id if user is not None else None,
    )
    await throttle.refuse_if_throttled()
    stored_hash = user.password_hash if user is not None else None
    # argon2id takes tens of milliseconds and 64 MiB: off the event loop, and only a few at
    # once, so a flood of guesses queues instead of starving every other request.
    async with ctx.password_checks:
        # Again: failures recorded while this attempt queued count, so a burst of guesses
        # cannot all slip in before the first of them is counted.
        await throttle.refuse_if_throttled()
        valid = await asyncio.to_thread(verify_password, stored_hash, password)
    now = ctx.clock()
    if user is None or not valid:
        async with ctx.store.transaction() as tx:
            failures = await tx.record_failed_login(
                loaded.interaction.interaction_id, MAX_FAILED_LOGINS, now
            )
            await throttle.record_failure(tx, now)
            await tx.append(
                event(
                    "user.login_failed",
                    now,
                    client_id=loaded.client.client_id,
                    request_id=loaded.stored.request_id,
                    user_id=user.user_id if user is not None else None,
                    # People paste passwords into the username field: keep only a digest.
                    username_digest=ctx.digester.digest("username", username)[:32],
                    failures=failures,
                )
            )
        if failures >= MAX_FAILED_LOGINS:
            raise PageOnlyInvalidRequest(
                "Too many failed sign-in attempts. Go back to the application and start again.",
                status_code=403,
                detail="sign-in closed after failed attempts",
            )
        return _login_page(ctx, loaded, error="Wrong username or password.", status_code=400)
    session_token = new_secret()
    session = Session(
        session_id=ctx.digester.digest("session", session_token),
        user_id=user.user_id,
        created_at=now,
        expires_at=now + ctx.settings.session_lifetime,
    )
    previous = cookie(request, SESSION_COOKIE)
    async with ctx.store.transaction() as tx:
        if previous is not None:
            await tx.remove_session(ctx.digester.digest("session", previous))
        await tx.add_session(session)
        await tx.set_interaction_user(loaded.interaction.interaction_id, user.user_id)
        await throttle.record_success(tx, now)
        await tx.append(
            event(
                "user.login_succeeded",
                now,
                user_id=user.user_id,
                client_id=loaded.client.client_id,
                request_id=loaded.stored.request_id,
            )
        )
    response = RedirectResponse(f"/interaction/{loaded.token}", status_code=303)
    set_cookie(
        response,
        SESSION_COOKIE,
        session_token,
        max_age=ctx.settings.session_lifetime,
        secure=ctx.settings.secure_cookies,
    )
    return response


@page_endpoint
async def decide(request: Request) -> Response:
    """POST /interaction/{token}/decision: record approve or deny and answer the client."""
    ctx = context_of(request)
    loaded = await _load(ctx, request)
    form = await read_form(request, ctx.settings.max_body_bytes)
    _check_csrf(ctx, loaded, form.get("csrf_token"))
    user = await _session_user(ctx, request)
    interaction = loaded.interaction
    if user is None or interaction.user_id != user.user_id:
        raise PageOnlyInvalidRequest("Sign in before deciding.", status_code=403)
    if interaction.consent_digest is None:
        raise PageOnlyInvalidRequest("The consent page was not shown.", status_code=403)
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        raise PageOnlyInvalidRequest("decision must be approve or deny.")
    req = loaded.stored.request
    items = req.authorization_details
    approved = approved_items(form, len(items)) if decision == "approve" else ()
    if decision == "approve" and items and not approved:
        # RFC 9396 leaves partial consent to the server; approving nothing is refusing.
        decision = "deny"
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        # A refusal here must still commit its audit event, so it is returned, not raised.
        outcome = await _record_decision(ctx, tx, loaded, user, decision, approved, now)
    if isinstance(outcome, OAuthError):
        raise outcome
    return authorization_response(
        req.redirect_uri, {**outcome, "state": req.state, "iss": ctx.settings.issuer}
    )


async def _record_decision(
    ctx: Context,
    tx: Transaction,
    loaded: _Loaded,
    user: User,
    decision: str,
    approved: tuple[int, ...],
    now: int,
) -> dict[str, str] | OAuthError:
    """Consume the interaction and the request, record the decision, issue the code."""
    interaction, req = loaded.interaction, loaded.stored.request
    items = req.authorization_details
    if not await tx.complete_interaction(interaction.interaction_id, now):
        return PageOnlyInvalidRequest("This sign-in has expired or is already finished.")
    client = await tx.get_client(loaded.client.client_id)
    if client is None:
        return PageOnlyInvalidRequest("The client is no longer registered.")
    try:
        revalidate(ctx, client, loaded.stored)
    except OAuthError as exc:
        await tx.append(
            event(
                "authorization_request.refused",
                now,
                client_id=client.client_id,
                user_id=user.user_id,
                request_id=loaded.stored.request_id,
                error=exc.error,
                reason=exc.detail,
            )
        )
        return exc
    if not await tx.consume_request(loaded.stored.request_id, client.client_id, now):
        return InvalidRequestUri("The request was already used.")
    await tx.append(
        event(
            "consent.decided",
            now,
            client_id=client.client_id,
            user_id=user.user_id,
            request_id=loaded.stored.request_id,
            decision="approved" if decision == "approve" else "denied",
            consent_sha256=interaction.consent_digest,
            scopes=list(req.scopes),
            resources=list(req.resources),
            approved_items=list(approved),
            declined_items=[i for i in range(len(items)) if i not in approved],
        )
    )
    if decision == "deny":
        return {"error": "access_denied", "error_description": "The request was denied."}
    approved_details = tuple(items[i] for i in approved)
    return {"code": await issue_code(ctx, tx, loaded.stored, user.user_id, approved_details, now)}


async def _load(ctx: Context, request: Request) -> _Loaded:
    token = str(request.path_params["token"])
    now = ctx.clock()
    browser_token = cookie(request, BROWSER_COOKIE)
    async with ctx.store.reader() as tx:
        interaction = await tx.get_interaction(ctx.digester.digest("interaction", token))
        if interaction is None or not interaction.is_open(now):
            raise PageOnlyInvalidRequest(
                "This sign-in has expired or is already finished. "
                "Go back to the application and start again."
            )
        if browser_token is None or not ctx.digester.matches(
            "browser", browser_token, interaction.browser_digest
        ):
            raise PageOnlyInvalidRequest("This sign-in was started in another browser.")
        stored = await tx.get_request(interaction.request_id)
        client = await tx.get_client(interaction.client_id)
    if stored is None or stored.consumed_at is not None:
        raise InvalidRequestUri("The request was already used.")
    if client is None:
        raise PageOnlyInvalidRequest("The client is no longer registered.")
    return _Loaded(token, browser_token, interaction, stored, client)


async def _session_user(ctx: Context, request: Request) -> User | None:
    token = cookie(request, SESSION_COOKIE)
    if token is None:
        return None
    async with ctx.store.reader() as tx:
        session = await tx.get_session(ctx.digester.digest("session", token), ctx.clock())
        return None if session is None else await tx.get_user(session.user_id)


def _check_csrf(ctx: Context, loaded: _Loaded, presented: str | None) -> None:
    if not csrf_valid(ctx.digester, loaded.browser_token, loaded.token, presented):
        raise PageOnlyInvalidRequest(
            "The form expired or did not come from this server. Reload the page and try again.",
            status_code=403,
        )


def _login_page(
    ctx: Context, loaded: _Loaded, *, error: str | None = None, status_code: int = 200
) -> Response:
    return render(
        "login.html",
        status_code=status_code,
        client_name=loaded.client.name,
        client_id=loaded.client.client_id,
        action=f"/interaction/{loaded.token}/login",
        csrf_token=csrf_token(ctx.digester, loaded.browser_token, loaded.token),
        error=error,
    )


async def _consent_page(ctx: Context, loaded: _Loaded, user: User) -> Response:
    revalidate(ctx, loaded.client, loaded.stored)
    document = build_consent(
        loaded.client, loaded.stored.request, ctx.settings.scopes, ctx.detail_types.sentence
    )
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await tx.set_interaction_user(loaded.interaction.interaction_id, user.user_id)
        await tx.set_consent_shown(loaded.interaction.interaction_id, document.sha256)
        await tx.append(
            event(
                "consent.shown",
                now,
                client_id=loaded.client.client_id,
                user_id=user.user_id,
                request_id=loaded.stored.request_id,
                document=_audit_copy(ctx, loaded, document),
                sha256=document.sha256,
            )
        )
    return render(
        "consent.html",
        consent=document,
        username=user.username,
        action=f"/interaction/{loaded.token}/decision",
        csrf_token=csrf_token(ctx.digester, loaded.browser_token, loaded.token),
    )


def _audit_copy(ctx: Context, loaded: _Loaded, shown: ConsentDocument) -> str:
    """The consent document as the audit trail keeps it: the same rendering, over the items
    as redacted for the trail. ``sha256`` stays that of the document the person saw."""
    if not ctx.redactor:
        return shown.text
    request = dataclasses.replace(
        loaded.stored.request,
        authorization_details=tuple(
            ctx.redactor.details(loaded.stored.request.authorization_details)
        ),
    )
    return build_consent(
        loaded.client, request, ctx.settings.scopes, ctx.detail_types.sentence
    ).text

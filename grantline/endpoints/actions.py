"""``POST /actions``: resource servers report what they did with an access token.

Only clients registered as resource servers (``--can-introspect``) may report. The report is
tied to the token by its ``jti``, and so to the grant, the decision and the pushed request: it is
the last event of the line ``grantline audit trace`` shows. A report is recorded once per
``report_id``, so a resource server that retries after a lost answer does not double it. A
report about a token issued for another audience is recorded too, marked ``foreign_token``:
the trail keeps what a resource server claimed, and the trace flags it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from grantline.audit.events import event
from grantline.audit.reports import ActionReport, parse_report
from grantline.context import Context
from grantline.endpoints._common import authenticate, context_of
from grantline.errors import UnauthorizedClient
from grantline.models import Client
from grantline.web.forms import read_body
from grantline.web.responses import json_response

__all__ = ["report_action"]

#: Retries of one report arrive within the reporter's backoff; a week covers any outage that
#: leaves the report still worth recording.
_REPORT_ID_MEMORY = 7 * 24 * 3600


async def report_action(request: Request) -> Response:
    """POST /actions."""
    ctx = context_of(request)
    # No form parameters: only HTTP Basic authenticates here, so a public client cannot.
    caller = await authenticate(ctx, request, {})
    if not caller.can_introspect:
        raise UnauthorizedClient("Only resource servers may report actions.", status_code=403)
    report = parse_report(await read_body(request, ctx.settings.max_body_bytes, "application/json"))
    recorded = await _record(ctx, caller, report)
    return json_response({"status": "recorded" if recorded else "duplicate"}, status_code=202)


async def _record(ctx: Context, caller: Client, report: ActionReport) -> bool:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        key = f"action-report:{caller.client_id}:{report.report_id}"
        if not await tx.remember_once(key, now + _REPORT_ID_MEMORY, now):
            return False
        token = await tx.get_token_by_jti(report.jti)
        grant = None if token is None else await tx.get_grant(token.grant_id)
        await tx.append(
            event(
                "resource.action_allowed" if report.allowed else "resource.action_refused",
                now,
                client_id=None if token is None else token.client_id,
                user_id=None if grant is None else grant.user_id,
                request_id=None if grant is None else grant.request_id,
                grant_id=None if token is None else token.grant_id,
                resource_server=caller.client_id,
                report_id=report.report_id,
                jti=report.jti,
                acted_at=report.at,
                detail_type=report.type,
                action=report.action,
                error=report.error,
                reason=report.reason,
                resource=report.resource,
                unknown_token=token is None or None,
                # A resource server registered with its resources (--resource) reports only
                # on tokens issued for one of them; anything else is recorded, and flagged.
                foreign_token=(
                    token is not None
                    and bool(caller.resources)
                    and not set(token.audience) & set(caller.resources)
                )
                or None,
                token_expired_at=None if token is None else token.expires_at,
                token_revoked_at=None if token is None else token.revoked_at,
                grant_revoked_at=None if grant is None else grant.revoked_at,
            )
        )
    return True

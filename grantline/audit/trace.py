"""One authorization's line through the audit trail, with its mismatches flagged.

pushed -> shown -> decided -> code -> token(s) -> action(s): built from the events alone (no
database reads), so what ``grantline audit trace`` shows is exactly what the chain proves.
Flags are the questions a reviewer would otherwise answer by hand: did the tokens carry more
than the person approved, did the consent recorded at the decision match the one shown, did a
resource server act outside the grant, after revocation or with an expired token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grantline.audit.redaction import HASH_PREFIX
from grantline.models import AuditEvent
from grantline.rs.authorization import Grant

__all__ = ["STAGES", "Trace", "TraceLine", "build_trace"]

#: Event type -> the stage of the line it belongs to.
STAGES: dict[str, str] = {
    "pushed_request.accepted": "pushed",
    "authorization_request.accepted": "pushed",
    "interaction.started": "opened",
    "user.login_succeeded": "signed in",
    "consent.shown": "shown",
    "consent.decided": "decided",
    "code.issued": "code",
    "token.issued": "token",
    "token.refreshed": "token",
    "resource.action_allowed": "action",
    "resource.action_refused": "action",
    "grant.revoked": "revoked",
    "token.revoked": "revoked",
    "code.replayed": "revoked",
    "refresh_token.reused": "revoked",
}


@dataclass(frozen=True, slots=True)
class TraceLine:
    event: AuditEvent
    stage: str
    summary: str
    flags: tuple[str, ...] = ()


@dataclass
class Trace:
    lines: list[TraceLine] = field(default_factory=list)

    @property
    def flags(self) -> list[tuple[int | None, str]]:
        return [(line.event.seq, flag) for line in self.lines for flag in line.flags]


def _key(item: Any) -> str:
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _details(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return "no authorization_details"
    return "; ".join(_key(item) for item in items)


@dataclass
class _Request:
    """What the line has established so far for one pushed request."""

    pushed: list[Any] | None = None
    scopes: set[str] = field(default_factory=set)
    shown_sha256: str | None = None
    approved: list[Any] | None = None
    revoked_at: int | None = None
    #: access token jti -> the authorization_details it was issued with (as recorded).
    tokens: dict[str, list[Any]] = field(default_factory=dict)


def build_trace(events: Sequence[AuditEvent]) -> Trace:
    """Events (any order; sorted by seq here) of one or more requests and their grants."""
    trace = Trace()
    by_request: dict[str, _Request] = {}
    grant_request: dict[str, str] = {}
    for ev in sorted(events, key=lambda e: e.seq or 0):
        if ev.grant_id and ev.request_id:
            grant_request.setdefault(ev.grant_id, ev.request_id)
        rid = ev.request_id or grant_request.get(ev.grant_id or "", "")
        state = by_request.setdefault(rid, _Request())
        summary, flags = _examine(ev, state)
        trace.lines.append(TraceLine(ev, STAGES.get(ev.type, "other"), summary, tuple(flags)))
    return trace


def _examine(ev: AuditEvent, state: _Request) -> tuple[str, list[str]]:
    data = ev.data
    flags: list[str] = []
    if ev.type in ("pushed_request.accepted", "authorization_request.accepted"):
        state.pushed = list(data.get("authorization_details", []))
        state.scopes = set(data.get("scopes", []))
        return (
            f"client {ev.client_id} asked for scopes {data.get('scopes', [])}, "
            f"resources {data.get('resources', [])}, {_details(state.pushed)}",
            flags,
        )
    if ev.type == "consent.shown":
        state.shown_sha256 = data.get("sha256")
        return f"consent document sha256 {data.get('sha256')} shown to {ev.user_id}", flags
    if ev.type == "consent.decided":
        return _decided(ev, state), _decided_flags(ev, state)
    if ev.type in ("code.issued", "token.issued", "token.refreshed"):
        return _issued(ev, state)
    if ev.type.startswith("resource.action_"):
        return _action(ev, state)
    if STAGES.get(ev.type) == "revoked" and (
        ev.type in ("grant.revoked", "token.revoked") or data.get("grant_revoked")
    ):
        if ev.type != "token.revoked":
            state.revoked_at = ev.at if state.revoked_at is None else state.revoked_at
        return f"{ev.type.replace('_', ' ')}", flags
    if ev.type == "user.login_succeeded":
        return f"{ev.user_id} signed in", flags
    return ", ".join(f"{k}={_key(v)}" for k, v in sorted(data.items()))[:300], flags


def _decided(ev: AuditEvent, state: _Request) -> str:
    data = ev.data
    if data.get("decision") != "approved":
        state.approved = []
        return f"{ev.user_id} denied the request"
    indices = [i for i in data.get("approved_items", []) if isinstance(i, int)]
    pushed = state.pushed or []
    state.approved = [pushed[i] for i in indices if 0 <= i < len(pushed)]
    declined = data.get("declined_items", [])
    return (
        f"{ev.user_id} approved items {[i + 1 for i in indices]}"
        + (f", declined items {[i + 1 for i in declined]}" if declined else "")
        + f" (scopes {data.get('scopes', [])})"
    )


def _decided_flags(ev: AuditEvent, state: _Request) -> list[str]:
    flags = []
    if state.pushed is None:
        flags.append("decision without a recorded pushed request")
    shown = ev.data.get("consent_sha256")
    if state.shown_sha256 is None:
        flags.append("decision without a recorded consent page")
    elif shown != state.shown_sha256:
        flags.append("the decision names a consent document other than the one shown")
    return flags


def _issued(ev: AuditEvent, state: _Request) -> tuple[str, list[str]]:
    data, flags = ev.data, []
    granted = list(data.get("authorization_details", []))
    if state.approved is None:
        flags.append(f"{ev.type} without a recorded decision")
    else:
        approved = {_key(item) for item in state.approved}
        extra = [item for item in granted if _key(item) not in approved]
        if extra:
            flags.append(f"{ev.type} carries details the person did not approve: {_details(extra)}")
    scopes = set(data.get("scopes", []))
    if state.pushed is not None and not scopes <= state.scopes:
        flags.append(f"{ev.type} carries scopes never asked for: {sorted(scopes - state.scopes)}")
    if state.revoked_at is not None and ev.at >= state.revoked_at:
        flags.append(f"{ev.type} after the grant was revoked")
    if ev.type == "code.issued":
        return f"code issued for {_details(granted)}", flags
    if isinstance(data.get("access_token_jti"), str):
        state.tokens[data["access_token_jti"]] = granted
    kind = data.get("token_type", "?")
    return (
        f"{kind} access token jti {data.get('access_token_jti')} for {data.get('audience', [])}, "
        f"expires in {data.get('expires_in')} s, {_details(granted)}",
        flags,
    )


def _action(ev: AuditEvent, state: _Request) -> tuple[str, list[str]]:
    data, flags = ev.data, []
    allowed = ev.type == "resource.action_allowed"
    acted_at = data.get("acted_at", ev.at)
    facts = ", ".join(f"{k}={_key(v)}" for k, v in sorted(data.get("action", {}).items()))
    summary = (
        f"{data.get('resource_server')} {'allowed' if allowed else 'refused'} "
        f"{data.get('detail_type') or 'action'} ({facts}) with jti {data.get('jti')}"
    )
    if not allowed:
        flags.append(
            "action outside the grant, refused by the resource server"
            + (f" ({data['error']})" if data.get("error") else "")
        )
    if data.get("unknown_token"):
        flags.append("action with a token this server did not issue")
    if data.get("foreign_token"):
        flags.append(
            f"reported by {data.get('resource_server')}, which is not an audience of the token"
        )
    revoked = [
        t
        for t in (data.get("grant_revoked_at"), data.get("token_revoked_at"), state.revoked_at)
        if t is not None
    ]
    if allowed and revoked and acted_at >= min(revoked):
        flags.append("action allowed after revocation")
    expires = data.get("token_expired_at")
    if allowed and expires is not None and acted_at >= expires:
        flags.append("action allowed with an expired token")
    granted = state.tokens.get(str(data.get("jti")))
    if allowed and granted is not None and data.get("detail_type"):
        outside = _outside_grant(granted, str(data["detail_type"]), data.get("action", {}))
        if outside:
            flags.append(f"action allowed outside the token's granted details: {outside}")
    return summary, flags


def _outside_grant(granted: list[Any], type_: str, facts: Mapping[str, Any]) -> str | None:
    """Why the resource server should have refused this action (checked with the same rules
    as ``grantline.rs``), or None. A fact checked against a value the trail redacted cannot be
    judged here and is given the benefit of the doubt."""
    grant = Grant(granted)
    try:
        decision = grant.check(type=type_, **facts)
    except TypeError:
        return "the reported facts cannot be checked"
    if decision.allowed:
        return None
    rule = grant.rules.get(type_, {}).get(decision.fact or "")
    if rule is not None and any(
        _redacted(_value_at(item, rule.path)) for item in granted if item.get("type") == type_
    ):
        return None
    return decision.reason


def _value_at(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = item
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def _redacted(value: Any) -> bool:
    if isinstance(value, list):
        return any(_redacted(v) for v in value)
    return isinstance(value, str) and (value.startswith(HASH_PREFIX) or value.startswith("*"))

"""``build_trace``: the line pushed -> shown -> decided -> token -> action, and each flag."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from grantline.audit import event
from grantline.audit.trace import build_trace
from grantline.models import AuditEvent

T0 = 1_700_000_000
PAY = {"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "42.00"}}
FILES = {"type": "file_access", "actions": ["read"], "locations": ["/reports"]}


def numbered(*events: AuditEvent) -> list[AuditEvent]:
    return [replace(e, seq=i) for i, e in enumerate(events, start=1)]


def line(**overrides: Any) -> list[AuditEvent]:
    """A clean line; ``overrides`` replace whole events by type."""
    common = {"client_id": "agent", "request_id": "r1"}
    events = {
        "pushed_request.accepted": event(
            "pushed_request.accepted",
            T0,
            **common,
            scopes=["invoices.pay"],
            resources=[],
            authorization_details=[PAY, FILES],
        ),
        "consent.shown": event("consent.shown", T0 + 5, **common, user_id="u1", sha256="abc"),
        "consent.decided": event(
            "consent.decided",
            T0 + 9,
            **common,
            user_id="u1",
            decision="approved",
            consent_sha256="abc",
            scopes=["invoices.pay"],
            approved_items=[0],
            declined_items=[1],
        ),
        "code.issued": event(
            "code.issued",
            T0 + 9,
            **common,
            user_id="u1",
            grant_id="g1",
            scopes=["invoices.pay"],
            authorization_details=[PAY],
        ),
        "token.issued": event(
            "token.issued",
            T0 + 10,
            **common,
            user_id="u1",
            grant_id="g1",
            scopes=["invoices.pay"],
            authorization_details=[PAY],
            access_token_jti="j1",
            token_type="DPoP",
            audience=["https://api.example"],
            expires_in=600,
        ),
        "resource.action_allowed": event(
            "resource.action_allowed",
            T0 + 20,
            **common,
            user_id="u1",
            grant_id="g1",
            resource_server="api",
            jti="j1",
            acted_at=T0 + 20,
            detail_type="payment_initiation",
            action={"amount": "42.00"},
            token_expired_at=T0 + 610,
        ),
    }
    events.update(overrides)
    return numbered(*(e for e in events.values() if e is not None))


def all_flags(events: list[AuditEvent]) -> list[str]:
    return [flag for _, flag in build_trace(events).flags]


def test_a_clean_line_has_every_stage_in_order_and_no_flags() -> None:
    trace = build_trace(line())
    assert [t.stage for t in trace.lines] == [
        "pushed",
        "shown",
        "decided",
        "code",
        "token",
        "action",
    ]
    assert trace.flags == []
    assert "approved items [1], declined items [2]" in trace.lines[2].summary
    assert "DPoP access token jti j1" in trace.lines[4].summary


def test_a_token_with_an_item_the_person_declined_is_flagged() -> None:
    token = line()[4]
    widened = event(
        "token.issued",
        token.at,
        client_id="agent",
        request_id="r1",
        grant_id="g1",
        scopes=["invoices.pay"],
        authorization_details=[PAY, FILES],
    )
    flags = all_flags(line(**{"token.issued": widened}))
    assert len(flags) == 1
    assert "did not approve" in flags[0] and "file_access" in flags[0]


def test_a_token_with_a_scope_never_asked_for_is_flagged() -> None:
    token = event(
        "token.issued",
        T0 + 10,
        client_id="agent",
        request_id="r1",
        grant_id="g1",
        scopes=["invoices.pay", "deployments.write"],
        authorization_details=[PAY],
    )
    assert all_flags(line(**{"token.issued": token})) == [
        "token.issued carries scopes never asked for: ['deployments.write']"
    ]


def test_a_decision_naming_another_consent_document_is_flagged() -> None:
    shown = event("consent.shown", T0 + 5, client_id="agent", request_id="r1", sha256="zzz")
    assert all_flags(line(**{"consent.shown": shown})) == [
        "the decision names a consent document other than the one shown"
    ]


def test_a_decision_without_a_consent_page_is_flagged() -> None:
    assert "decision without a recorded consent page" in all_flags(line(**{"consent.shown": None}))


def test_a_token_without_a_decision_is_flagged() -> None:
    flags = all_flags(line(**{"consent.decided": None}))
    assert "code.issued without a recorded decision" in flags
    assert "token.issued without a recorded decision" in flags


def test_a_refused_action_is_flagged_as_outside_the_grant() -> None:
    refused = event(
        "resource.action_refused",
        T0 + 30,
        grant_id="g1",
        jti="j1",
        action={"amount": "420.00"},
        error="insufficient_authorization_details",
    )
    events = line()
    events.append(numbered(*events, refused)[-1])
    assert all_flags(events) == [
        "action outside the grant, refused by the resource server "
        "(insufficient_authorization_details)"
    ]


def test_an_action_allowed_after_revocation_is_flagged() -> None:
    events = line(**{"resource.action_allowed": None})
    revoked = event("grant.revoked", T0 + 15, client_id="agent", grant_id="g1")
    late = event(
        "resource.action_allowed",
        T0 + 20,
        grant_id="g1",
        jti="j1",
        acted_at=T0 + 20,
        action={"amount": "1.00"},
    )
    assert all_flags(numbered(*events, revoked, late)) == ["action allowed after revocation"]


def test_an_action_allowed_after_revocation_recorded_by_the_server_is_flagged() -> None:
    late = event(
        "resource.action_allowed",
        T0 + 20,
        grant_id="g1",
        jti="j1",
        acted_at=T0 + 20,
        grant_revoked_at=T0 + 12,
    )
    assert all_flags(line(**{"resource.action_allowed": late})) == [
        "action allowed after revocation"
    ]


def test_an_action_allowed_with_an_expired_token_is_flagged() -> None:
    late = event(
        "resource.action_allowed",
        T0 + 700,
        grant_id="g1",
        jti="j1",
        acted_at=T0 + 700,
        token_expired_at=T0 + 610,
    )
    assert all_flags(line(**{"resource.action_allowed": late})) == [
        "action allowed with an expired token"
    ]


def test_an_action_with_an_unknown_token_is_flagged() -> None:
    forged = event("resource.action_allowed", T0 + 20, jti="nope", unknown_token=True)
    assert "action with a token this server did not issue" in all_flags(
        line(**{"resource.action_allowed": forged})
    )


def test_a_denied_request_has_no_approved_items() -> None:
    denied = event(
        "consent.decided",
        T0 + 9,
        client_id="agent",
        request_id="r1",
        user_id="u1",
        decision="denied",
        consent_sha256="abc",
    )
    events = line(
        **{
            "consent.decided": denied,
            "code.issued": None,
            "token.issued": None,
            "resource.action_allowed": None,
        }
    )
    trace = build_trace(events)
    assert trace.flags == []
    assert trace.lines[-1].summary == "u1 denied the request"


def test_events_are_ordered_by_seq_whatever_order_they_come_in() -> None:
    events = line()
    trace = build_trace(list(reversed(events)))
    assert [t.event.seq for t in trace.lines] == [1, 2, 3, 4, 5, 6]
    assert trace.flags == []


def allowed_action(**action: Any) -> AuditEvent:
    return event(
        "resource.action_allowed",
        T0 + 20,
        client_id="agent",
        request_id="r1",
        grant_id="g1",
        jti="j1",
        acted_at=T0 + 20,
        detail_type="payment_initiation",
        action=action,
    )


def test_an_action_the_resource_server_allowed_beyond_the_grant_is_flagged() -> None:
    flags = all_flags(line(**{"resource.action_allowed": allowed_action(amount="420.00")}))
    assert len(flags) == 1
    assert flags[0].startswith("action allowed outside the token's granted details: amount")


def test_an_action_of_a_type_never_granted_is_flagged() -> None:
    action = allowed_action(amount="1.00")
    action = replace(action, data={**action.data, "detail_type": "deployment"})
    (flag,) = all_flags(line(**{"resource.action_allowed": action}))
    assert "No deployment authorization_details were granted" in flag


def test_a_fact_checked_against_a_redacted_value_is_not_judged() -> None:
    redacted = {**PAY, "creditorAccount": {"iban": "******************8603"}}
    token = replace(line()[4], data={**line()[4].data, "authorization_details": [redacted]})
    code = replace(line()[3], data={**line()[3].data, "authorization_details": [redacted]})
    pushed = replace(line()[0], data={**line()[0].data, "authorization_details": [redacted]})
    action = allowed_action(amount="42.00", creditor_iban="DE02100100109307118603")
    events = line(
        **{
            "pushed_request.accepted": pushed,
            "code.issued": code,
            "token.issued": token,
            "resource.action_allowed": action,
        }
    )
    assert all_flags(events) == []
    # The same action with an IBAN the trail kept in full is judged, and refused.
    plain = {**PAY, "creditorAccount": {"iban": "FR7630006000011234567890189"}}
    events = line(
        **{
            "pushed_request.accepted": replace(
                pushed, data={**pushed.data, "authorization_details": [plain]}
            ),
            "code.issued": replace(code, data={**code.data, "authorization_details": [plain]}),
            "token.issued": replace(token, data={**token.data, "authorization_details": [plain]}),
            "resource.action_allowed": action,
        }
    )
    (flag,) = all_flags(events)
    assert "creditor_iban" in flag


def test_a_report_from_a_resource_server_outside_the_audience_is_flagged() -> None:
    foreign = event(
        "resource.action_allowed",
        T0 + 20,
        grant_id="g1",
        jti="j1",
        resource_server="other-api",
        foreign_token=True,
    )
    assert all_flags(line(**{"resource.action_allowed": foreign})) == [
        "reported by other-api, which is not an audience of the token"
    ]

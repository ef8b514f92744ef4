"""``POST /actions``: resource servers report actions; each refusal sent from outside."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import httpx
import pytest

from grantline.models import AuditEvent
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import CLIENT_SECRET, ISSUER, Agent, FrozenClock

RS = ("api", CLIENT_SECRET)


@pytest.fixture
async def resource_server(store: SQLiteStore) -> tuple[str, str]:
    await add_client(store, client_id="api", name="Payments API", can_introspect=True)
    return RS


async def access_token(agent: Agent) -> str:
    code, verifier = await agent.code_for()
    response = await agent.exchange(code, verifier)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _claims(token: str) -> dict[str, Any]:
    """The access token's claims; its signature is the resource server's business."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def report(jti: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": secrets.token_urlsafe(16),
        "jti": jti,
        "outcome": "allowed",
        "at": 1_700_000_000,
        "type": "payment_initiation",
        "action": {"action": "initiate", "amount": "42.00", "currency": "EUR"},
        "resource": "https://api.example.com/payments",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def send(http: httpx.AsyncClient, body: Any, auth: Any = RS, **kwargs: Any) -> httpx.Response:
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return await http.post("/actions", content=body, auth=auth, headers=headers, **kwargs)


async def action_events(store: SQLiteStore) -> list[AuditEvent]:
    async with store.reader() as tx:
        return [e for e in await tx.tail(200) if e.type.startswith("resource.action_")]


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_a_report_becomes_the_last_event_of_the_grant(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await access_token(agent)
    response = await send(agent.http, report(_claims(token)["jti"]))
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "recorded"}
    (ev,) = await action_events(store)
    assert ev.type == "resource.action_allowed"
    async with store.reader() as tx:
        token_row = await tx.get_token_by_jti(_claims(token)["jti"])
        assert token_row is not None
        grant = await tx.get_grant(token_row.grant_id)
        assert grant is not None
        trail = await tx.events_for(grant_id=grant.grant_id)
    assert trail[-1] == ev
    assert ev.grant_id == grant.grant_id and ev.client_id == "agent"
    assert ev.user_id == grant.user_id and ev.request_id == grant.request_id
    assert ev.data["resource_server"] == "api"
    assert ev.data["action"] == {"action": "initiate", "amount": "42.00", "currency": "EUR"}
    assert ev.data["token_expired_at"] == token_row.expires_at
    assert "unknown_token" not in ev.data


async def test_a_refused_action_is_recorded_with_its_error(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    token = await access_token(agent)
    body = report(
        _claims(token)["jti"],
        outcome="refused",
        error="insufficient_authorization_details",
        reason="amount 420.00 is above the approved 42.00",
    )
    assert (await send(agent.http, body)).status_code == 202
    (ev,) = await action_events(store)
    assert ev.type == "resource.action_refused"
    assert ev.data["error"] == "insufficient_authorization_details"


async def test_a_retried_report_is_recorded_once(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    token = await access_token(agent)
    body = report(_claims(token)["jti"])
    assert (await send(agent.http, body)).json() == {"status": "recorded"}
    again = await send(agent.http, body)
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate"}
    assert len(await action_events(store)) == 1


async def test_a_report_for_a_token_never_issued_is_recorded_and_marked(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    assert (await send(agent.http, report("forged-jti"))).status_code == 202
    (ev,) = await action_events(store)
    assert ev.data["unknown_token"] is True
    assert ev.grant_id is None


async def test_a_report_after_revocation_carries_the_revocation_time(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await access_token(agent)
    revoked = await agent.http.post(
        "/revoke", data={"token": token}, auth=(agent.client_id, agent.secret)
    )
    assert revoked.status_code == 200
    await send(agent.http, report(_claims(token)["jti"]))
    (ev,) = await action_events(store)
    assert ev.data["token_revoked_at"] == clock()


async def test_a_report_on_a_token_for_another_audience_is_recorded_and_marked(
    agent: Agent, store: SQLiteStore
) -> None:
    await add_client(
        store,
        client_id="other-api",
        name="Other API",
        can_introspect=True,
        resources=("https://other.example/api",),
    )
    await add_client(
        store,
        client_id="own-api",
        name="Own API",
        can_introspect=True,
        resources=(ISSUER,),  # a token asked for without `resource` has the issuer as aud
    )
    token = await access_token(agent)
    jti = _claims(token)["jti"]
    assert _claims(token)["aud"] == ISSUER
    for reporter in ("other-api", "own-api"):
        response = await send(agent.http, report(jti), auth=(reporter, CLIENT_SECRET))
        assert response.status_code == 202, response.text
    foreign, own = await action_events(store)
    assert foreign.data["resource_server"] == "other-api"
    assert foreign.data["foreign_token"] is True
    assert own.data["resource_server"] == "own-api"
    assert "foreign_token" not in own.data


# -- refusals -------------------------------------------------------------------------------


async def test_an_unauthenticated_report_is_refused(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    response = await send(agent.http, report("x" * 16), auth=None)
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    assert await action_events(store) == []


async def test_a_wrong_secret_is_refused(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    response = await send(agent.http, report("x" * 16), auth=("api", "wrong"))
    assert_error(response, 401, "invalid_client")
    assert await action_events(store) == []


async def test_a_client_that_is_not_a_resource_server_is_refused(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    token = await access_token(agent)
    # The agent itself would like its refused actions to read as allowed.
    response = await send(
        agent.http, report(_claims(token)["jti"]), auth=(agent.client_id, agent.secret)
    )
    assert_error(response, 403, "unauthorized_client")
    assert await action_events(store) == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (report("j" * 16, report_id="short"), "report_id"),
        (report("j" * 16, report_id=None), "report_id is required"),
        (report("j" * 16, outcome="maybe"), "outcome"),
        (report("j" * 16, at="yesterday"), "at must be"),
        (report("j" * 16, at=True), "at must be"),
        (report("j" * 16, at=-1), "at must be"),
        ({**report("j" * 16), "jti": ""}, "jti"),
        ({**report("j" * 16), "jti": 7}, "jti"),
        (report("j" * 16, extra="x"), "Unknown member 'extra'"),
        (report("j" * 16, action=[1]), "action must be an object"),
        (report("j" * 16, action={f"f{i}": i for i in range(33)}), "at most 32"),
        (report("j" * 16, action={"amount": 4.2}), "action.amount must be"),
        (report("j" * 16, action={"nested": {"a": 1}}), "action.nested must be"),
        (report("j" * 16, action={"big": 2**60}), "action.big must be"),
        (report("j" * 16, action={"bad name!": "x"}), "fact names"),
        (report("j" * 16, action={"long": "x" * 513}), "action.long must be"),
        (report("j" * 16, reason="r" * 301), "reason must be"),
        (report("j" * 16, type=""), "type must be"),
        (b'{"a":' * 5000, "not JSON"),
        ({**report("j" * 16), "jti": "abc\u0000def"}, "jti contains control characters"),
        ({**report("j" * 16), "jti": "abc\ud800"}, "jti contains control characters"),
        (report("j" * 16, type="payment\u001b[2J"), "type contains control characters"),
        (report("j" * 16, reason="ok\nFAKE LINE"), "reason contains control characters"),
        (report("j" * 16, error="x\ud800"), "error contains control characters"),
        (report("j" * 16, resource="https://a\u007f"), "resource contains control characters"),
        (report("j" * 16, action={"amount": "4\u001b2"}), "action.amount must be"),
        (report("j" * 16, action={"amount": "4\udfff"}), "action.amount must be"),
    ],
)
async def test_a_malformed_report_is_refused(
    agent: Agent,
    resource_server: tuple[str, str],
    store: SQLiteStore,
    body: Any,
    fragment: str,
) -> None:
    response = await send(agent.http, body)
    assert_error(response, 400, "invalid_request")
    assert fragment in response.json()["error_description"]
    assert await action_events(store) == []


async def test_a_form_body_is_refused(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    response = await agent.http.post("/actions", data={"jti": "x"}, auth=RS)
    assert_error(response, 400, "invalid_request")
    assert "application/json" in response.json()["error_description"]


async def test_an_oversized_report_is_refused(
    agent: Agent, resource_server: tuple[str, str], store: SQLiteStore
) -> None:
    response = await send(agent.http, b" " * (64 * 1024 + 1))
    assert_error(response, 413, "invalid_request")
    assert await action_events(store) == []

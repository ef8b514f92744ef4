"""Login and consent: CSRF, browser binding, decisions, and what the audit trail records."""

from __future__ import annotations

import dataclasses
import hashlib

import httpx
import pytest
from starlette.applications import Starlette

from grantline.models import Client
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import ISSUER, PASSWORD, USERNAME, Agent, FrozenClock, csrf_of, query_of


async def started(agent: Agent) -> str:
    pushed = await agent.push(scope="inbox.read invoices.pay")
    return await agent.open(pushed.request_uri)


async def signed_in(agent: Agent) -> str:
    interaction = await started(agent)
    response = await agent.login(interaction)
    assert response.status_code == 303
    return interaction


async def events(store: SQLiteStore) -> list[str]:
    async with store.reader() as tx:
        return [e.type for e in await tx.tail(50)]


async def test_login_page_names_the_client_and_carries_csrf(agent: Agent) -> None:
    interaction = await started(agent)
    page = await agent.http.get(interaction)
    assert page.status_code == 200
    assert "Invoice Agent" in page.text
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert csrf_of(page.text)
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_client_controlled_text_is_escaped(agent: Agent, store: SQLiteStore) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await add_client(store, client_id="evil", name=evil)
    evil_agent = Agent(agent.http, "evil")
    pushed = await evil_agent.push(state='"><script>alert(2)</script>')
    interaction = await evil_agent.open(pushed.request_uri)
    login_page = await agent.http.get(interaction)
    assert "<script>alert" not in login_page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in login_page.text
    await evil_agent.login(interaction)
    consent_page = await agent.http.get(interaction)
    assert "<script>" not in consent_page.text
    assert "<img src=x" not in consent_page.text


async def test_wrong_password_is_refused_and_audited(agent: Agent, store: SQLiteStore) -> None:
    interaction = await started(agent)
    response = await agent.login(interaction, password="wrong-password")
    assert response.status_code == 400
    assert "Wrong username or password" in response.text
    assert "grantline_session" not in response.headers.get("set-cookie", "")
    assert (await events(store))[-1] == "user.login_failed"


async def test_unknown_user_gets_the_same_answer(agent: Agent) -> None:
    interaction = await started(agent)
    response = await agent.login(interaction, username="nobody")
    assert response.status_code == 400
    assert "Wrong username or password" in response.text


async def test_login_sets_a_fresh_http_only_session(agent: Agent, store: SQLiteStore) -> None:
    interaction = await started(agent)
    response = await agent.login(interaction)
    assert response.headers["location"] == interaction
    cookie = response.headers["set-cookie"]
    assert "grantline_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    first = agent.http.cookies["grantline_session"]
    second_interaction = await started(agent)
    await agent.login(second_interaction)
    assert agent.http.cookies["grantline_session"] != first
    assert (await events(store)).count("user.login_succeeded") == 2


@pytest.mark.parametrize("token", [None, "forged", "0" * 64], ids=["missing", "forged", "zeros"])
async def test_login_without_a_valid_csrf_token_is_403(agent: Agent, token: str | None) -> None:
    interaction = await started(agent)
    data = {"username": USERNAME, "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = await agent.http.post(f"{interaction}/login", data=data)
    assert response.status_code == 403
    assert '<code id="error-code">invalid_request</code>' in response.text


async def test_csrf_token_of_another_interaction_is_refused(agent: Agent) -> None:
    first = await started(agent)
    second = await started(agent)
    token = csrf_of((await agent.http.get(first)).text)
    response = await agent.http.post(
        f"{second}/login", data={"csrf_token": token, "username": USERNAME, "password": PASSWORD}
    )
    assert response.status_code == 403


async def test_interaction_is_bound_to_the_browser_that_started_it(
    agent: Agent, app: Starlette
) -> None:
    interaction = await started(agent)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as other_browser:
        page = await other_browser.get(interaction)
    assert page.status_code == 400
    assert "another browser" in page.text


async def test_unknown_interaction_is_an_error_page(agent: Agent) -> None:
    page = await agent.http.get("/interaction/not-a-real-one")
    assert page.status_code == 400
    assert '<code id="error-code">invalid_request</code>' in page.text


async def test_expired_interaction_is_refused(agent: Agent, clock: FrozenClock) -> None:
    interaction = await signed_in(agent)
    clock.advance(600)
    page = await agent.http.get(interaction)
    assert page.status_code == 400
    assert "expired" in page.text


async def test_consent_page_shows_scopes_and_is_recorded(agent: Agent, store: SQLiteStore) -> None:
    interaction = await signed_in(agent)
    page = await agent.http.get(interaction)
    assert page.status_code == 200
    assert "Read messages in your inbox" in page.text
    assert "Pay invoices on your behalf" in page.text
    assert "agent.example" in page.text
    assert 'name="decision" value="approve"' in page.text
    assert 'name="decision" value="deny"' in page.text
    async with store.reader() as tx:
        shown = (await tx.tail(1))[0]
    assert shown.type == "consent.shown"
    document = shown.data["document"]
    assert shown.data["sha256"] == hashlib.sha256(document.encode()).hexdigest()
    assert "Invoice Agent" in document and "Pay invoices on your behalf" in document


async def test_approve_redirects_with_code_state_and_iss(agent: Agent, store: SQLiteStore) -> None:
    interaction = await signed_in(agent)
    response = await agent.decide(interaction, "approve")
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("https://agent.example/callback?")
    query = query_of(location)
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == "state-123" and query["iss"] == ISSUER
    trail = await events(store)
    assert trail[-2:] == ["consent.decided", "code.issued"]
    async with store.reader() as tx:
        tail = await tx.tail(3)
    shown, decided = tail[0], tail[1]
    assert decided.data["decision"] == "approved"
    assert decided.data["consent_sha256"] == shown.data["sha256"]


async def test_deny_redirects_with_access_denied(agent: Agent, store: SQLiteStore) -> None:
    interaction = await signed_in(agent)
    response = await agent.decide(interaction, "deny")
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123" and query["iss"] == ISSUER
    assert "code" not in query
    async with store.reader() as tx:
        last = (await tx.tail(1))[0]
    assert last.type == "consent.decided" and last.data["decision"] == "denied"


async def test_a_decision_cannot_be_submitted_twice(agent: Agent) -> None:
    interaction = await signed_in(agent)
    page = await agent.http.get(interaction)
    data = {"csrf_token": csrf_of(page.text), "decision": "approve"}
    assert (await agent.http.post(f"{interaction}/decision", data=data)).status_code == 303
    again = await agent.http.post(f"{interaction}/decision", data=data)
    assert again.status_code == 400


async def test_two_tabs_cannot_both_turn_one_request_into_codes(
    agent: Agent, store: SQLiteStore
) -> None:
    pushed = await agent.push()
    first = await agent.open(pushed.request_uri)
    second = await agent.open(pushed.request_uri)  # a reload, before expiry: allowed
    await agent.login(first)
    first_page = await agent.http.get(first)
    second_page = await agent.http.get(second)
    ok = await agent.http.post(
        f"{first}/decision", data={"csrf_token": csrf_of(first_page.text), "decision": "approve"}
    )
    assert ok.status_code == 303
    late = await agent.http.post(
        f"{second}/decision", data={"csrf_token": csrf_of(second_page.text), "decision": "approve"}
    )
    assert late.status_code == 400
    assert (await events(store)).count("code.issued") == 1


async def test_decision_before_login_is_refused(agent: Agent) -> None:
    interaction = await started(agent)
    page = await agent.http.get(interaction)
    response = await agent.http.post(
        f"{interaction}/decision", data={"csrf_token": csrf_of(page.text), "decision": "approve"}
    )
    assert response.status_code == 403


async def test_decision_without_the_consent_page_is_refused(agent: Agent) -> None:
    interaction = await started(agent)
    login_page = await agent.http.get(interaction)
    token = csrf_of(login_page.text)
    await agent.http.post(
        f"{interaction}/login",
        data={"csrf_token": token, "username": USERNAME, "password": PASSWORD},
    )
    response = await agent.http.post(
        f"{interaction}/decision", data={"csrf_token": token, "decision": "approve"}
    )
    assert response.status_code == 403
    assert "consent page was not shown" in response.text


async def test_unknown_decision_value_is_refused(agent: Agent) -> None:
    interaction = await signed_in(agent)
    page = await agent.http.get(interaction)
    response = await agent.http.post(
        f"{interaction}/decision", data={"csrf_token": csrf_of(page.text), "decision": "maybe"}
    )
    assert response.status_code == 400


async def test_policy_change_before_the_decision_leaves_nothing_consumed(
    agent: Agent, store: SQLiteStore, client: Client
) -> None:
    interaction = await signed_in(agent)
    page = await agent.http.get(interaction)
    async with store.transaction() as tx:
        await tx.update_client(dataclasses.replace(client, scopes=("inbox.read",)))
    response = await agent.http.post(
        f"{interaction}/decision", data={"csrf_token": csrf_of(page.text), "decision": "approve"}
    )
    assert response.status_code == 400
    assert "no longer matches" in response.text
    trail = await events(store)
    assert "consent.decided" not in trail and "code.issued" not in trail
    assert trail[-1] == "authorization_request.refused"
    async with store.reader() as tx:
        shown = [e for e in await tx.tail(50) if e.type == "consent.shown"][0]
        stored = await tx.get_request(str(shown.request_id))
    assert stored is not None and stored.consumed_at is None


async def test_a_sign_in_page_closes_after_five_wrong_passwords(
    agent: Agent, store: SQLiteStore
) -> None:
    interaction = await started(agent)
    for attempt in range(1, 5):
        response = await agent.login(interaction, password=f"guess-{attempt}")
        assert response.status_code == 400
    page = await agent.http.get(interaction)
    token = csrf_of(page.text)
    last = await agent.http.post(
        f"{interaction}/login",
        data={"csrf_token": token, "username": USERNAME, "password": "guess-5"},
    )
    assert last.status_code == 403
    assert "Too many failed sign-in attempts" in last.text
    # Even the right password no longer opens this page.
    late = await agent.http.post(
        f"{interaction}/login",
        data={"csrf_token": token, "username": USERNAME, "password": PASSWORD},
    )
    assert late.status_code == 400
    assert "grantline_session" not in late.headers.get("set-cookie", "")
    async with store.reader() as tx:
        failed = [e for e in await tx.tail(20) if e.type == "user.login_failed"]
    assert [e.data["failures"] for e in failed] == [1, 2, 3, 4, 5]
    # The typed username is kept only as a digest.
    assert all("username" not in e.data and e.data["username_digest"] for e in failed)

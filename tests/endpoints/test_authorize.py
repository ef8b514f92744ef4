"""The authorization endpoint: the pushed-request lifecycle, attacked from the browser side."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from grantline.models import Client
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client, build_app
from tests.helpers import ISSUER, REDIRECT_URI, Agent, FrozenClock, query_of


def assert_error_page(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f'<code id="error-code">{error}</code>' in response.text
    # Never a login form on an error page: the reference is validated before login.
    assert 'name="password"' not in response.text
    assert "location" not in response.headers


async def last_event(store: SQLiteStore) -> str:
    async with store.reader() as tx:
        return (await tx.tail(1))[0].type


async def test_a_pushed_request_starts_an_interaction(agent: Agent) -> None:
    pushed = await agent.push()
    response = await agent.authorize(pushed.request_uri)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/interaction/")
    cookie = response.headers["set-cookie"]
    assert "grantline_browser=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # loopback development issuer


async def test_unknown_request_uri_is_an_error_page(agent: Agent) -> None:
    response = await agent.authorize("urn:ietf:params:oauth:request_uri:nothing-here")
    assert_error_page(response, "invalid_request_uri")


async def test_foreign_request_uri_format_is_an_error_page(agent: Agent) -> None:
    response = await agent.authorize("https://evil.example/request")
    assert_error_page(response, "invalid_request_uri")


async def test_another_clients_request_uri_is_refused_and_not_burnt(
    agent: Agent, store: SQLiteStore
) -> None:
    await add_client(store, client_id="mallory", name="Mallory")
    pushed = await agent.push()
    response = await agent.http.get(
        "/authorize", params={"client_id": "mallory", "request_uri": pushed.request_uri}
    )
    assert_error_page(response, "invalid_request_uri")
    assert await last_event(store) == "authorization_request.client_mismatch"
    # The owner can still use it: the wrong client could neither consume nor mark it.
    async with store.reader() as tx:
        events = await tx.tail(1)
        stored = await tx.get_request(str(events[0].request_id))
    assert stored is not None and stored.first_presented_at is None
    assert (await agent.authorize(pushed.request_uri)).status_code == 303


async def test_an_expired_request_uri_is_refused(agent: Agent, clock: FrozenClock) -> None:
    pushed = await agent.push()
    clock.advance(60)
    response = await agent.authorize(pushed.request_uri)
    assert_error_page(response, "invalid_request_uri")
    assert "expired" in response.text


async def test_expiry_is_checked_at_first_presentation_only(
    agent: Agent, clock: FrozenClock
) -> None:
    pushed = await agent.push()
    interaction = await agent.open(pushed.request_uri)
    # A slow login: well past the request_uri's 60 s, within the interaction's 600 s.
    clock.advance(300)
    await agent.login(interaction)
    response = await agent.decide(interaction)
    assert response.status_code == 303
    assert "code" in query_of(response.headers["location"])


async def test_a_used_request_uri_is_refused(agent: Agent) -> None:
    pushed = await agent.push()
    interaction = await agent.open(pushed.request_uri)
    await agent.login(interaction)
    assert (await agent.decide(interaction)).status_code == 303
    response = await agent.authorize(pushed.request_uri)
    assert_error_page(response, "invalid_request_uri")
    assert "already used" in response.text


@pytest.mark.parametrize(
    "substituted",
    [
        pytest.param({"scope": "invoices.pay"}, id="scope"),
        pytest.param({"redirect_uri": "https://evil.example/cb"}, id="redirect_uri"),
        pytest.param({"state": "attacker-state"}, id="state"),
        pytest.param({"response_type": "token"}, id="response_type"),
    ],
)
async def test_substituted_front_channel_parameters_are_refused(
    agent: Agent, store: SQLiteStore, substituted: dict[str, str]
) -> None:
    pushed = await agent.push()
    response = await agent.authorize(pushed.request_uri, **substituted)
    assert_error_page(response, "invalid_request")
    assert next(iter(substituted)) in response.text
    assert await last_event(store) == "authorization_request.substitution_refused"


async def test_repeating_pushed_values_on_the_front_channel_is_allowed(agent: Agent) -> None:
    pushed = await agent.push()
    response = await agent.authorize(pushed.request_uri, scope="inbox.read")
    assert response.status_code == 303


async def test_missing_client_id_is_an_error_page(agent: Agent) -> None:
    pushed = await agent.push()
    response = await agent.http.get("/authorize", params={"request_uri": pushed.request_uri})
    assert_error_page(response, "invalid_request")


async def test_unknown_client_is_an_error_page(agent: Agent) -> None:
    response = await agent.http.get(
        "/authorize", params={"client_id": "nobody", "request_uri": "urn:x"}
    )
    assert_error_page(response, "invalid_request")


async def test_duplicate_query_parameters_are_an_error_page(agent: Agent) -> None:
    response = await agent.http.get("/authorize?client_id=agent&client_id=agent")
    assert_error_page(response, "invalid_request")


async def test_oversized_query_is_refused(agent: Agent) -> None:
    response = await agent.http.get("/authorize", params={"client_id": "agent", "x": "y" * 9000})
    assert_error_page(response, "invalid_request", status=414)


async def test_plain_request_is_refused_when_the_server_requires_par(
    agent: Agent, store: SQLiteStore
) -> None:
    params = {"client_id": "agent", **agent.params("v" * 43)}
    response = await agent.http.get("/authorize", params=params)
    assert_error_page(response, "invalid_request")
    assert "pushed authorization request" in response.text
    assert await last_event(store) == "authorization_request.refused"


@pytest.fixture
def relaxed(settings: Settings, store: SQLiteStore, clock: FrozenClock) -> httpx.AsyncClient:
    """A server that accepts plain authorization requests."""
    app = build_app(
        dataclasses.replace(settings, require_pushed_authorization_requests=False), store, clock
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)


async def test_plain_request_works_where_nobody_requires_par(
    relaxed: httpx.AsyncClient, client: Client, user: object
) -> None:
    agent = Agent(relaxed)
    verifier = "v" * 43
    response = await relaxed.get(
        "/authorize", params={"client_id": "agent", **agent.params(verifier)}
    )
    assert response.status_code == 303
    interaction = response.headers["location"]
    await agent.login(interaction)
    decided = await agent.decide(interaction)
    code = query_of(decided.headers["location"])["code"]
    assert (await agent.exchange(code, verifier)).status_code == 200


async def test_plain_request_is_refused_when_the_client_requires_par(
    relaxed: httpx.AsyncClient, store: SQLiteStore
) -> None:
    await add_client(store, client_id="strict", require_par=True)
    agent = Agent(relaxed, "strict")
    response = await relaxed.get(
        "/authorize", params={"client_id": "strict", **agent.params("v" * 43)}
    )
    assert_error_page(response, "invalid_request")


async def test_plain_request_errors_redirect_with_state_and_iss(
    relaxed: httpx.AsyncClient, client: Client
) -> None:
    agent = Agent(relaxed)
    params = {"client_id": "agent", **agent.params("v" * 43, scope="admin")}
    response = await relaxed.get("/authorize", params=params)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    assert query_of(location) == {
        "error": "invalid_scope",
        "error_description": "The scope 'admin' is unknown.",
        "state": "state-123",
        "iss": ISSUER,
    }


async def test_plain_request_with_unregistered_redirect_uri_never_redirects(
    relaxed: httpx.AsyncClient, client: Client
) -> None:
    agent = Agent(relaxed)
    params = {
        "client_id": "agent",
        **agent.params("v" * 43, redirect_uri="https://evil.example/cb", scope="admin"),
    }
    assert_error_page(await relaxed.get("/authorize", params=params), "invalid_request")


async def test_client_policy_change_applies_to_already_pushed_requests(
    agent: Agent, store: SQLiteStore, client: Client
) -> None:
    # RFC 9126 7.4: a request pushed under the old policy must not outlive the change.
    pushed = await agent.push(scope="invoices.pay")
    async with store.transaction() as tx:
        await tx.update_client(dataclasses.replace(client, scopes=("inbox.read",)))
    response = await agent.authorize(pushed.request_uri)
    assert_error_page(response, "invalid_request")
    assert "no longer matches" in response.text


async def test_redirect_uri_removed_after_push_is_refused(
    agent: Agent, store: SQLiteStore, client: Client
) -> None:
    pushed = await agent.push()
    async with store.transaction() as tx:
        await tx.update_client(
            dataclasses.replace(client, redirect_uris=("https://agent.example/new",))
        )
    assert_error_page(await agent.authorize(pushed.request_uri), "invalid_request")


async def test_removed_client_cannot_use_its_pushed_requests(
    agent: Agent, store: SQLiteStore
) -> None:
    pushed = await agent.push()
    async with store.transaction() as tx:
        await tx.remove_client("agent", 0)
    assert_error_page(await agent.authorize(pushed.request_uri), "invalid_request")


async def test_post_to_authorize_is_405(agent: Agent) -> None:
    response = await agent.http.post("/authorize")
    assert response.status_code == 405


async def test_a_request_uri_opened_in_one_browser_is_refused_in_another(
    agent: Agent, app: object, store: SQLiteStore
) -> None:
    pushed = await agent.push()
    assert (await agent.authorize(pushed.request_uri)).status_code == 303
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as other:
        response = await other.get(
            "/authorize", params={"client_id": "agent", "request_uri": pushed.request_uri}
        )
    assert_error_page(response, "invalid_request_uri")
    assert "another browser" in response.text
    assert await last_event(store) == "authorization_request.browser_mismatch"
    # The first browser may reload.
    assert (await agent.authorize(pushed.request_uri)).status_code == 303


async def test_plain_request_in_progress_is_stopped_when_the_client_starts_requiring_par(
    relaxed: httpx.AsyncClient, store: SQLiteStore, client: Client, user: object
) -> None:
    agent = Agent(relaxed)
    response = await relaxed.get(
        "/authorize", params={"client_id": "agent", **agent.params("v" * 43)}
    )
    interaction = response.headers["location"]
    await agent.login(interaction)
    async with store.transaction() as tx:
        await tx.update_client(dataclasses.replace(client, require_par=True))
    page = await relaxed.get(interaction)
    assert page.status_code == 400
    assert "pushed authorization request" in page.text

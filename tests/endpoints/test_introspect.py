"""Token introspection (RFC 7662): who may ask, what they learn, and when a token is inactive."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from grantline.models import User
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import CLIENT_SECRET, ISSUER, Agent, FrozenClock, csrf_of, query_of

FILES: dict[str, Any] = {"type": "file_access", "actions": ["read"], "locations": ["/reports"]}
DEPLOY: dict[str, Any] = {"type": "deployment", "service": "api", "environment": "prod"}
INACTIVE = {"active": False}


async def issue(agent: Agent, **overrides: str | None) -> dict[str, Any]:
    code, verifier = await agent.code_for(**overrides)
    response = await agent.exchange(code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def issue_with_details(agent: Agent, items: list[dict[str, Any]], checked: int) -> Any:
    pushed = await agent.push(authorization_details=json.dumps(items))
    interaction = await agent.open(pushed.request_uri)
    await agent.login(interaction)
    page = await agent.http.get(interaction)
    decided = await agent.http.post(
        f"{interaction}/decision",
        data={"csrf_token": csrf_of(page.text), "decision": "approve", f"detail_{checked}": "on"},
    )
    code = query_of(decided.headers["location"])["code"]
    response = await agent.exchange(code, pushed.verifier)
    assert response.status_code == 200, response.text
    return response.json()


async def introspect(
    http: httpx.AsyncClient, token: str, auth: Any = ("agent", CLIENT_SECRET), **extra: str
) -> httpx.Response:
    data = {"token": token, **extra}
    return await http.post("/introspect", data=data, auth=auth)


async def described(http: httpx.AsyncClient, token: str, **kwargs: Any) -> dict[str, Any]:
    response = await introspect(http, token, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def stranger(store: SQLiteStore) -> tuple[str, str]:
    await add_client(store, client_id="stranger", name="Stranger")
    return ("stranger", CLIENT_SECRET)


@pytest.fixture
async def resource_server(store: SQLiteStore) -> tuple[str, str]:
    await add_client(store, client_id="api", name="Payments API", can_introspect=True)
    return ("api", CLIENT_SECRET)


# -- who may ask ------------------------------------------------------------------------------


async def test_the_caller_must_authenticate(agent: Agent) -> None:
    tokens = await issue(agent)
    response = await agent.http.post("/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_wrong_secret_is_refused_and_audited(agent: Agent, store: SQLiteStore) -> None:
    tokens = await issue(agent)
    response = await introspect(agent.http, tokens["access_token"], auth=("agent", "guess"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "active" not in response.json()
    async with store.reader() as tx:
        (event,) = await tx.tail(1)
    assert event.type == "client.authentication_failed"
    assert event.data["endpoint"] == "/introspect"


async def test_the_token_parameter_is_required(agent: Agent) -> None:
    # An empty value counts as absent (RFC 6749 3.1).
    for extra in ({"token_type_hint": "access_token"}, {"token": ""}):
        response = await agent.http.post("/introspect", data=extra, auth=("agent", CLIENT_SECRET))
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "token is required.",
        }


async def test_only_post_is_allowed(agent: Agent) -> None:
    tokens = await issue(agent)
    response = await agent.http.get("/introspect", params={"token": tokens["access_token"]})
    assert response.status_code == 405


# -- what an active token says ----------------------------------------------------------------


async def test_own_access_token_is_described(agent: Agent, user: User, clock: FrozenClock) -> None:
    tokens = await issue_with_details(agent, [FILES, DEPLOY], checked=1)
    response = await introspect(agent.http, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    jwks = (await agent.http.get("/jwks")).json()
    claims = jwt.decode(
        tokens["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"]
    ).claims
    assert body == {
        "active": True,
        "iss": ISSUER,
        "client_id": "agent",
        "sub": user.user_id,
        "scope": "inbox.read",
        "iat": clock.now,
        "exp": clock.now + 600,
        "token_type": "Bearer",
        "aud": ISSUER,
        "jti": claims["jti"],
        "authorization_details": [DEPLOY],
    }


async def test_own_refresh_token_is_described(agent: Agent, clock: FrozenClock) -> None:
    tokens = await issue(agent)
    body = await described(agent.http, tokens["refresh_token"])
    assert body["active"] is True
    assert body["client_id"] == "agent"
    assert body["scope"] == "inbox.read"
    assert body["exp"] == clock.now + 14 * 24 * 3600
    assert body["token_type"] != "Bearer"


@pytest.mark.parametrize("hint", ["refresh_token", "access_token", "id_token", "nonsense"])
async def test_a_wrong_or_unknown_hint_still_finds_the_token(agent: Agent, hint: str) -> None:
    tokens = await issue(agent)
    access = await described(agent.http, tokens["access_token"], token_type_hint=hint)
    assert access["active"] is True and access["token_type"] == "Bearer"
    refresh = await described(agent.http, tokens["refresh_token"], token_type_hint=hint)
    assert refresh["active"] is True and refresh["token_type"] != "Bearer"


# -- other clients' tokens --------------------------------------------------------------------


async def test_another_clients_token_looks_exactly_like_an_unknown_one(
    agent: Agent, stranger: tuple[str, str]
) -> None:
    tokens = await issue(agent)
    unknown = await introspect(agent.http, "no-such-token", auth=stranger)
    for value in (tokens["access_token"], tokens["refresh_token"]):
        foreign = await introspect(agent.http, value, auth=stranger)
        assert foreign.status_code == 200
        assert foreign.json() == INACTIVE
        assert foreign.content == unknown.content
    # The owner still sees it: the stranger's question changed nothing.
    assert (await described(agent.http, tokens["access_token"]))["active"] is True


async def test_a_resource_server_may_introspect_every_token(
    agent: Agent, resource_server: tuple[str, str], user: User
) -> None:
    tokens = await issue(agent)
    body = await described(agent.http, tokens["access_token"], auth=resource_server)
    assert body["active"] is True
    assert body["client_id"] == "agent"
    assert body["sub"] == user.user_id


async def test_can_introspect_does_not_make_other_tokens_look_alive(
    agent: Agent, resource_server: tuple[str, str], clock: FrozenClock
) -> None:
    tokens = await issue(agent)
    clock.advance(600)
    assert await described(agent.http, tokens["access_token"], auth=resource_server) == INACTIVE


# -- inactive tokens --------------------------------------------------------------------------


async def test_an_unknown_token_is_inactive(agent: Agent) -> None:
    assert await described(agent.http, "x" * 43) == INACTIVE


async def test_a_token_whose_signature_was_tampered_with_is_inactive(agent: Agent) -> None:
    tokens = await issue(agent)
    header, payload, signature = tokens["access_token"].split(".")
    forged = f"{header}.{payload}.{signature[:-2]}AA"
    assert await described(agent.http, forged) == INACTIVE


async def test_an_access_token_expires_with_its_exp(agent: Agent, clock: FrozenClock) -> None:
    tokens = await issue(agent)
    clock.advance(599)
    assert (await described(agent.http, tokens["access_token"]))["active"] is True
    clock.advance(1)
    assert await described(agent.http, tokens["access_token"]) == INACTIVE


async def test_an_expired_refresh_token_is_inactive(agent: Agent, clock: FrozenClock) -> None:
    tokens = await issue(agent)
    clock.advance(14 * 24 * 3600)
    assert await described(agent.http, tokens["refresh_token"]) == INACTIVE


async def test_revoked_tokens_are_inactive(agent: Agent) -> None:
    tokens = await issue(agent)
    revoked = await agent.http.post(
        "/revoke", data={"token": tokens["access_token"]}, auth=("agent", CLIENT_SECRET)
    )
    assert revoked.status_code == 200
    assert await described(agent.http, tokens["access_token"]) == INACTIVE
    assert (await described(agent.http, tokens["refresh_token"]))["active"] is True


async def test_a_rotated_refresh_token_is_inactive(agent: Agent) -> None:
    tokens = await issue(agent)
    rotated = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert rotated.status_code == 200
    assert await described(agent.http, tokens["refresh_token"]) == INACTIVE
    assert (await described(agent.http, rotated.json()["refresh_token"]))["active"] is True
    # The access token issued before the rotation lives on until it expires.
    assert (await described(agent.http, tokens["access_token"]))["active"] is True


async def test_tokens_of_a_revoked_grant_are_inactive(agent: Agent) -> None:
    code, verifier = await agent.code_for()
    tokens = (await agent.exchange(code, verifier)).json()
    replay = await agent.exchange(code, verifier)
    assert replay.json()["error"] == "invalid_grant"
    assert await described(agent.http, tokens["access_token"]) == INACTIVE
    assert await described(agent.http, tokens["refresh_token"]) == INACTIVE


async def test_a_resource_server_does_not_see_another_clients_refresh_tokens(
    agent: Agent, resource_server: tuple[str, str]
) -> None:
    tokens = await issue(agent)
    assert await described(agent.http, tokens["refresh_token"], auth=resource_server) == INACTIVE
    assert (await described(agent.http, tokens["refresh_token"]))["active"] is True


async def test_a_public_client_cannot_introspect(agent: Agent, store: SQLiteStore) -> None:
    await add_client(store, client_id="public", auth_method="none", secret=None)
    tokens = await issue(agent)
    response = await agent.http.post(
        "/introspect", data={"token": tokens["access_token"], "client_id": "public"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")

"""Token revocation (RFC 7009): what each revocation takes down, and who may revoke."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from grantline.models import AuditEvent
from grantline.storage.sql import SQLiteStore
from grantline.tokens.digest import Digester
from grantline.tokens.jwt import sign_access_token
from grantline.tokens.ordered import TIME_DIGITS, access_token_id
from tests.conftest import SECRET_KEY, add_client
from tests.helpers import CLIENT_SECRET, Agent, FrozenClock, as_issued_before_time_ordered_ids

INACTIVE = {"active": False}


async def issue(agent: Agent) -> dict[str, Any]:
    code, verifier = await agent.code_for()
    response = await agent.exchange(code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def revoke(
    http: httpx.AsyncClient, token: str, auth: Any = ("agent", CLIENT_SECRET), **extra: str
) -> httpx.Response:
    data = {"token": token, **extra}
    return await http.post("/revoke", data=data, auth=auth)


async def introspect(agent: Agent, token: str) -> dict[str, Any]:
    response = await agent.http.post(
        "/introspect", data={"token": token}, auth=(agent.client_id, agent.secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(agent: Agent, token: str) -> httpx.Response:
    return await agent.token({"grant_type": "refresh_token", "refresh_token": token})


def claims_of(access_token: str) -> dict[str, Any]:
    payload = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


async def events(store: SQLiteStore, type_: str) -> list[AuditEvent]:
    async with store.reader() as tx:
        return [e for e in await tx.tail(100) if e.type == type_]


@pytest.fixture
async def mallory(agent: Agent, store: SQLiteStore) -> Agent:
    await add_client(store, client_id="mallory", name="Mallory", can_introspect=True)
    return Agent(agent.http, "mallory")


async def test_revoking_an_access_token_leaves_the_refresh_token_working(
    agent: Agent, store: SQLiteStore
) -> None:
    tokens = await issue(agent)
    response = await revoke(agent.http, tokens["access_token"])
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert await introspect(agent, tokens["access_token"]) == INACTIVE
    refreshed = await refresh(agent, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert (await introspect(agent, refreshed.json()["access_token"]))["active"] is True
    (event,) = await events(store, "token.revoked")
    assert event.client_id == "agent"
    assert event.data["access_token_jti"]
    assert not await events(store, "grant.revoked")


async def test_revoking_a_refresh_token_revokes_the_whole_grant(
    agent: Agent, store: SQLiteStore
) -> None:
    tokens = await issue(agent)
    response = await revoke(agent.http, tokens["refresh_token"])
    assert response.status_code == 200
    assert await introspect(agent, tokens["access_token"]) == INACTIVE
    assert await introspect(agent, tokens["refresh_token"]) == INACTIVE
    refreshed = await refresh(agent, tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    (event,) = await events(store, "grant.revoked")
    assert event.client_id == "agent" and event.grant_id
    async with store.reader() as tx:
        grant = await tx.get_grant(str(event.grant_id))
    assert grant is not None and grant.revoked_at is not None


async def test_a_refresh_token_issued_before_time_ordered_ids_is_found_and_revoked(
    agent: Agent, store: SQLiteStore, digester: Digester, db_path: Path
) -> None:
    tokens = await issue(agent)
    old = as_issued_before_time_ordered_ids(db_path, digester, tokens["refresh_token"])
    assert (await introspect(agent, old))["active"] is True
    assert (await revoke(agent.http, old)).status_code == 200
    assert await introspect(agent, tokens["access_token"]) == INACTIVE
    assert (await refresh(agent, old)).json()["error"] == "invalid_grant"
    assert len(await events(store, "grant.revoked")) == 1


async def test_an_access_token_issued_before_time_ordered_ids_is_found_and_revoked(
    agent: Agent, store: SQLiteStore, digester: Digester, clock: FrozenClock
) -> None:
    tokens = await issue(agent)
    async with store.reader() as tx:
        row = await tx.get_token(access_token_id(digester, tokens["access_token"]))
    assert row is not None
    # What an earlier version issued: a jti of 128 random bits alone, stored by plain digest.
    jti = secrets.token_urlsafe(16)
    claims = {**claims_of(tokens["access_token"]), "jti": jti}
    async with store.transaction() as tx:
        old = await sign_access_token(tx, "ES256", claims, clock(), secret=SECRET_KEY)
        await tx.add_token(replace(row, token_digest=digester.digest("access_token", old), jti=jti))
    assert (await introspect(agent, old))["active"] is True
    assert (await revoke(agent.http, old)).status_code == 200
    assert await introspect(agent, old) == INACTIVE
    assert (await introspect(agent, tokens["access_token"]))["active"] is True


async def test_an_access_token_with_an_altered_jti_is_unknown(agent: Agent) -> None:
    tokens = await issue(agent)
    header, _, signature = tokens["access_token"].split(".")
    claims = claims_of(tokens["access_token"])
    claims["jti"] = "0" * TIME_DIGITS + claims["jti"][TIME_DIGITS:]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    forged = f"{header}.{forged_payload.decode()}.{signature}"
    assert await introspect(agent, forged) == INACTIVE
    assert (await revoke(agent.http, forged)).status_code == 200
    assert (await introspect(agent, tokens["access_token"]))["active"] is True


async def test_revoking_a_refresh_token_leaves_other_grants_alone(agent: Agent) -> None:
    first = await issue(agent)
    second = await issue(agent)
    assert (await revoke(agent.http, first["refresh_token"])).status_code == 200
    assert (await introspect(agent, second["access_token"]))["active"] is True
    assert (await refresh(agent, second["refresh_token"])).status_code == 200


@pytest.mark.parametrize("hint", ["refresh_token", "access_token", "nonsense"])
async def test_a_wrong_hint_still_revokes(agent: Agent, hint: str) -> None:
    tokens = await issue(agent)
    assert (
        await revoke(agent.http, tokens["access_token"], token_type_hint=hint)
    ).status_code == 200
    assert await introspect(agent, tokens["access_token"]) == INACTIVE


async def test_revoking_twice_is_fine_and_audited_once(agent: Agent, store: SQLiteStore) -> None:
    tokens = await issue(agent)
    assert (await revoke(agent.http, tokens["access_token"])).status_code == 200
    assert (await revoke(agent.http, tokens["access_token"])).status_code == 200
    assert len(await events(store, "token.revoked")) == 1


async def test_an_unknown_token_answers_200_and_changes_nothing(
    agent: Agent, store: SQLiteStore
) -> None:
    tokens = await issue(agent)
    async with store.reader() as tx:
        before = len(await tx.tail(1000))
    response = await revoke(agent.http, "no-such-token")
    assert response.status_code == 200
    async with store.reader() as tx:
        assert len(await tx.tail(1000)) == before
    assert (await introspect(agent, tokens["access_token"]))["active"] is True


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
async def test_another_clients_token_is_refused_and_audited(
    agent: Agent, mallory: Agent, store: SQLiteStore, kind: str
) -> None:
    tokens = await issue(agent)
    response = await revoke(agent.http, tokens[kind], auth=("mallory", CLIENT_SECRET))
    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "The token was not issued to this client.",
    }
    (event,) = await events(store, "token.revocation_refused")
    assert event.client_id == "mallory"
    assert event.data["owner_client_id"] == "agent"
    assert not await events(store, "token.revoked")
    assert not await events(store, "grant.revoked")
    # Still alive for its owner, even though mallory may introspect everything.
    assert (await introspect(agent, tokens["access_token"]))["active"] is True
    assert (await refresh(agent, tokens["refresh_token"])).status_code == 200


async def test_the_token_parameter_is_required(agent: Agent) -> None:
    # An empty value counts as absent (RFC 6749 3.1).
    for extra in ({"token_type_hint": "access_token"}, {"token": ""}):
        response = await agent.http.post("/revoke", data=extra, auth=("agent", CLIENT_SECRET))
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "token is required.",
        }


async def test_unauthenticated_revocation_is_refused(agent: Agent) -> None:
    tokens = await issue(agent)
    response = await agent.http.post("/revoke", data={"token": tokens["refresh_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    wrong = await revoke(agent.http, tokens["refresh_token"], auth=("agent", "not-the-secret"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert (await refresh(agent, tokens["refresh_token"])).status_code == 200


async def test_an_unknown_client_cannot_probe_tokens(agent: Agent) -> None:
    tokens = await issue(agent)
    response = await revoke(agent.http, tokens["access_token"], auth=("ghost", CLIENT_SECRET))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert (await introspect(agent, tokens["access_token"]))["active"] is True

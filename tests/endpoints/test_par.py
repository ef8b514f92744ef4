"""The PAR endpoint from the attacker's side: every refusal with its exact code and status."""

from __future__ import annotations

import json

import pytest

from grantline.models import Client
from grantline.protocol.par import REQUEST_URI_PREFIX
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import CLIENT_SECRET, REDIRECT_URI, Agent, database_bytes, new_verifier


async def test_push_answers_201_with_a_fresh_reference(agent: Agent, store: SQLiteStore) -> None:
    pushed = await agent.push()
    response = pushed.response
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == 60
    assert pushed.request_uri.startswith(REQUEST_URI_PREFIX)
    # 32 random bytes, base64url: at least 256 bits (RFC 9126 7.1).
    assert len(pushed.request_uri) - len(REQUEST_URI_PREFIX) >= 43
    again = await agent.push()
    assert again.request_uri != pushed.request_uri
    async with store.reader() as tx:
        events = await tx.tail(5)
    accepted = [e for e in events if e.type == "pushed_request.accepted"]
    assert len(accepted) == 2
    assert accepted[0].client_id == "agent"
    assert accepted[0].data["scopes"] == ["inbox.read"]
    assert accepted[0].data["lifetime"] == 60


async def test_only_a_digest_of_the_reference_is_stored(
    agent: Agent, store: SQLiteStore, db_path: object
) -> None:
    pushed = await agent.push()
    secret = pushed.request_uri[len(REQUEST_URI_PREFIX) :]
    async with store.reader() as tx:
        events = await tx.tail(1)
    assert events[0].request_id is not None
    assert secret not in events[0].request_id
    raw = database_bytes(db_path)
    assert secret.encode() not in raw
    assert CLIENT_SECRET.encode() not in raw


async def test_client_lifetime_override(agent: Agent, store: SQLiteStore) -> None:
    await add_client(store, client_id="quick", par_lifetime=15)
    response = await Agent(agent.http, "quick").push_raw(agent.params(new_verifier()))
    assert response.status_code == 201
    assert response.json()["expires_in"] == 15


async def test_public_client_pushes_with_client_id_only(agent: Agent, store: SQLiteStore) -> None:
    await add_client(store, client_id="public", auth_method="none", secret=None)
    data = {**agent.params(new_verifier()), "client_id": "public"}
    response = await agent.http.post("/par", data=data)
    assert response.status_code == 201, response.text


async def test_client_secret_post_is_accepted_and_the_secret_not_kept(
    agent: Agent, store: SQLiteStore, db_path: object
) -> None:
    await add_client(store, client_id="poster", auth_method="client_secret_post")
    data = {**agent.params(new_verifier()), "client_id": "poster", "client_secret": CLIENT_SECRET}
    response = await agent.http.post("/par", data=data)
    assert response.status_code == 201, response.text
    raw = database_bytes(db_path)
    assert CLIENT_SECRET.encode() not in raw


def form(**overrides: str | None) -> dict[str, str]:
    from grantline.protocol.pkce import s256_challenge

    base: dict[str, str | None] = {
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "inbox.read",
        "state": "s",
        "code_challenge": s256_challenge(new_verifier()),
        "code_challenge_method": "S256",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


REFUSALS = [
    ("missing-pkce", {"code_challenge": None}, "invalid_request"),
    ("plain-pkce", {"code_challenge_method": "plain"}, "invalid_request"),
    ("missing-pkce-method", {"code_challenge_method": None}, "invalid_request"),
    ("unregistered-redirect-uri", {"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
    ("unknown-scope", {"scope": "admin"}, "invalid_scope"),
    ("implicit", {"response_type": "token"}, "unsupported_response_type"),
    ("missing-response-type", {"response_type": None}, "invalid_request"),
    ("request-uri-at-par", {"request_uri": REQUEST_URI_PREFIX + "abc"}, "invalid_request"),
    ("unsigned-request-object", {"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request_object"),
]


@pytest.mark.parametrize(("overrides", "error"), [pytest.param(o, e, id=i) for i, o, e in REFUSALS])
async def test_invalid_pushes_are_refused_with_the_rfc_error(
    agent: Agent, store: SQLiteStore, overrides: dict[str, str | None], error: str
) -> None:
    response = await agent.push_raw(form(**overrides))
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"
    async with store.reader() as tx:
        last = (await tx.tail(1))[0]
    assert last.type == "pushed_request.refused"
    assert last.data["error"] == error


async def test_duplicate_parameters_are_refused(agent: Agent) -> None:
    body = "&".join(f"{k}={v}" for k, v in form().items()) + "&scope=invoices.pay"
    response = await agent.push_raw(
        None, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The scope parameter is repeated.",
    }


async def test_wrong_secret_is_invalid_client_with_challenge(
    agent: Agent, store: SQLiteStore
) -> None:
    response = await agent.push_raw(form(), auth=("agent", "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    async with store.reader() as tx:
        assert (await tx.tail(1))[0].type == "client.authentication_failed"


@pytest.mark.parametrize(
    ("auth", "extra"),
    [
        pytest.param(("nobody", "x"), {}, id="unknown-client"),
        pytest.param(None, {}, id="no-authentication"),
        pytest.param(None, {"client_id": "agent"}, id="confidential-client-without-secret"),
        pytest.param(
            None, {"client_id": "agent", "client_secret": CLIENT_SECRET}, id="wrong-method"
        ),
        pytest.param(None, {"client_assertion_type": "x", "client_id": "agent"}, id="assertion"),
    ],
)
async def test_authentication_failures_are_invalid_client(
    agent: Agent, client: Client, auth: tuple[str, str] | None, extra: dict[str, str]
) -> None:
    response = await agent.http.post("/par", data={**form(), **extra}, auth=auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_malformed_basic_header_is_invalid_client(agent: Agent) -> None:
    response = await agent.http.post(
        "/par", data=form(), headers={"authorization": "Basic !!!not-base64"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_two_authentication_methods_are_invalid_request(agent: Agent) -> None:
    response = await agent.push_raw({**form(), "client_secret": CLIENT_SECRET})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_body_client_id_must_match_the_authenticated_client(agent: Agent) -> None:
    response = await agent.push_raw({**form(), "client_id": "someone-else"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_get_is_405(agent: Agent) -> None:
    response = await agent.http.get("/par")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert response.headers["allow"] == "POST"


async def test_oversized_body_is_413(agent: Agent) -> None:
    response = await agent.push_raw({**form(), "state": "x" * 70_000})
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_non_form_body_is_refused(agent: Agent) -> None:
    response = await agent.http.post("/par", json=form(), auth=("agent", CLIENT_SECRET))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_accepted_event_records_what_was_asked(agent: Agent, store: SQLiteStore) -> None:
    item = {"type": "file_access", "locations": ["/reports"], "actions": ["read"]}
    await agent.push(authorization_details=json.dumps([item]))
    async with store.reader() as tx:
        accepted = (await tx.tail(1))[0]
    assert accepted.type == "pushed_request.accepted"
    assert accepted.data["authorization_details"] == [item]
    assert accepted.data["resources"] == []

"""The token endpoint: code redemption, refresh rotation, and every refusal."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from grantline.storage.sql import SQLiteStore
from grantline.tokens.digest import Digester, new_secret
from grantline.tokens.ordered import TIME_DIGITS, access_token_id
from tests.conftest import add_client
from tests.helpers import (
    CLIENT_SECRET,
    REDIRECT_URI,
    Agent,
    FrozenClock,
    as_issued_before_time_ordered_ids,
    database_bytes,
    query_of,
)


async def trail(store: SQLiteStore) -> list[str]:
    async with store.reader() as tx:
        return [e.type for e in await tx.tail(50)]


async def test_code_exchange_issues_tokens(agent: Agent, store: SQLiteStore) -> None:
    code, verifier = await agent.code_for()
    response = await agent.exchange(code, verifier)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "inbox.read"
    assert len(body["access_token"]) >= 43 and len(body["refresh_token"]) >= 43
    assert (await trail(store))[-1] == "token.issued"


async def test_no_bearer_secret_is_stored_in_clear(
    agent: Agent, store: SQLiteStore, db_path: object
) -> None:
    code, verifier = await agent.code_for()
    body = (await agent.exchange(code, verifier)).json()
    raw = database_bytes(db_path)
    for secret in (code, body["access_token"], body["refresh_token"], CLIENT_SECRET):
        assert secret.encode() not in raw


async def test_code_replay_is_refused_and_revokes_what_the_code_produced(
    agent: Agent, store: SQLiteStore, digester: Digester
) -> None:
    code, verifier = await agent.code_for()
    first = (await agent.exchange(code, verifier)).json()
    replay = await agent.exchange(code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert (await trail(store))[-1] == "code.replayed"
    async with store.reader() as tx:
        access = await tx.get_token(access_token_id(digester, first["access_token"]))
    assert access is not None and access.revoked_at is not None
    refreshed = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


async def test_another_client_cannot_redeem_or_burn_a_code(
    agent: Agent, store: SQLiteStore
) -> None:
    await add_client(store, client_id="mallory")
    code, verifier = await agent.code_for()
    stolen = await Agent(agent.http, "mallory").exchange(code, verifier)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert (await agent.exchange(code, verifier)).status_code == 200


async def test_an_expired_code_is_refused(agent: Agent, clock: FrozenClock) -> None:
    code, verifier = await agent.code_for()
    clock.advance(60)
    response = await agent.exchange(code, verifier)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The authorization code has expired.",
    }


async def test_wrong_verifier_is_refused_and_burns_the_code(agent: Agent) -> None:
    code, verifier = await agent.code_for()
    wrong = await agent.exchange(code, "w" * 43)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # Guessing verifiers against one code is not possible: it is gone after one try.
    assert (await agent.exchange(code, verifier)).json()["error"] == "invalid_grant"


async def test_missing_verifier_is_invalid_request(agent: Agent) -> None:
    code, _ = await agent.code_for()
    response = await agent.token({"grant_type": "authorization_code", "code": code})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_redirect_uri_must_match(agent: Agent) -> None:
    code, verifier = await agent.code_for()
    response = await agent.exchange(code, verifier, redirect_uri="https://agent.example/other")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param({}, "invalid_request", id="missing-grant-type"),
        pytest.param({"grant_type": "password"}, "unsupported_grant_type", id="password"),
        pytest.param({"grant_type": "implicit"}, "unsupported_grant_type", id="implicit"),
        pytest.param({"grant_type": "authorization_code"}, "invalid_request", id="missing-code"),
        pytest.param(
            {"grant_type": "authorization_code", "code": "made-up", "code_verifier": "v" * 43},
            "invalid_grant",
            id="unknown-code",
        ),
        pytest.param({"grant_type": "refresh_token"}, "invalid_request", id="missing-refresh"),
        pytest.param(
            {"grant_type": "refresh_token", "refresh_token": "made-up"},
            "invalid_grant",
            id="unknown-refresh",
        ),
    ],
)
async def test_malformed_token_requests(agent: Agent, data: dict[str, str], error: str) -> None:
    response = await agent.token(data)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_token_endpoint_requires_client_authentication(agent: Agent) -> None:
    code, verifier = await agent.code_for()
    response = await agent.token(
        {"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
        auth=("agent", "wrong"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers


async def test_refresh_rotates_and_reuse_revokes_the_family(
    agent: Agent, store: SQLiteStore
) -> None:
    code, verifier = await agent.code_for()
    first = (await agent.exchange(code, verifier)).json()
    second = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert second_body["access_token"] != first["access_token"]
    assert (await trail(store))[-1] == "token.refreshed"
    reuse = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert (await trail(store))[-1] == "refresh_token.reused"
    # The legitimate-looking newest token dies with the family.
    newest = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": second_body["refresh_token"]}
    )
    assert newest.status_code == 400
    assert newest.json()["error"] == "invalid_grant"


def refresh_form(refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


async def test_a_refresh_token_is_stored_under_its_issue_time_and_a_keyed_digest(
    agent: Agent, store: SQLiteStore, digester: Digester
) -> None:
    code, verifier = await agent.code_for()
    before = time.time_ns() // 1_000_000
    first = (await agent.exchange(code, verifier)).json()["refresh_token"]
    assert before <= int(first[:TIME_DIGITS], 16) <= time.time_ns() // 1_000_000
    async with store.reader() as tx:
        stored = await tx.get_token(first[:TIME_DIGITS] + digester.digest("refresh_token", first))
    assert stored is not None and stored.kind == "refresh_token"
    second = await agent.token(refresh_form(first))
    assert second.status_code == 200
    assert (await agent.token(refresh_form(second.json()["refresh_token"]))).status_code == 200


async def test_a_refresh_token_issued_before_time_ordered_ids_still_rotates(
    agent: Agent, store: SQLiteStore, digester: Digester, db_path: Path
) -> None:
    code, verifier = await agent.code_for()
    issued = (await agent.exchange(code, verifier)).json()["refresh_token"]
    old = as_issued_before_time_ordered_ids(db_path, digester, issued)
    assert (await agent.token(refresh_form(issued))).status_code == 400
    rotated = await agent.token(refresh_form(old))
    assert rotated.status_code == 200
    assert len(rotated.json()["refresh_token"]) == TIME_DIGITS + 43
    # Reuse detection holds for the old format too: the replay takes the new token down.
    reuse = await agent.token(refresh_form(old))
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert (await trail(store))[-1] == "refresh_token.reused"
    newest = await agent.token(refresh_form(rotated.json()["refresh_token"]))
    assert newest.status_code == 400
    assert newest.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: "000000000000" + t[TIME_DIGITS:], id="time-zeroed"),
        pytest.param(lambda t: f"{int(t[:12], 16) + 1:012x}" + t[12:], id="time-moved"),
        pytest.param(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="random-part"),
        pytest.param(lambda t: t[TIME_DIGITS:], id="without-time"),
        pytest.param(lambda t: t + "A", id="longer"),
        pytest.param(lambda t: t[:TIME_DIGITS], id="time-only"),
        pytest.param(lambda t: "0" * 12 + new_secret(), id="unknown"),
    ],
)
async def test_a_tampered_or_unknown_refresh_token_is_refused_and_burns_nothing(
    agent: Agent, store: SQLiteStore, tamper: object
) -> None:
    assert callable(tamper)
    code, verifier = await agent.code_for()
    issued = (await agent.exchange(code, verifier)).json()["refresh_token"]
    refused = await agent.token(refresh_form(tamper(issued)))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert (await trail(store))[-1] == "token.issued"
    assert (await agent.token(refresh_form(issued))).status_code == 200


async def test_refresh_may_narrow_but_never_widen_scope(agent: Agent) -> None:
    code, verifier = await agent.code_for(scope="inbox.read invoices.pay")
    first = (await agent.exchange(code, verifier)).json()
    narrowed = await agent.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "scope": "inbox.read",
        }
    )
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "inbox.read"
    widened = await agent.token(
        {
            "grant_type": "refresh_token",
            "refresh_token": narrowed.json()["refresh_token"],
            "scope": "inbox.read deployments.write",
        }
    )
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"
    # The refused widening did not rotate the token: it still works.
    again = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": narrowed.json()["refresh_token"]}
    )
    assert again.status_code == 200
    assert again.json()["scope"] == "inbox.read invoices.pay"


async def test_another_client_cannot_use_a_refresh_token(agent: Agent, store: SQLiteStore) -> None:
    await add_client(store, client_id="mallory")
    code, verifier = await agent.code_for()
    first = (await agent.exchange(code, verifier)).json()
    stolen = await Agent(agent.http, "mallory").token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    mine = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert mine.status_code == 200


async def test_an_expired_refresh_token_is_refused(agent: Agent, clock: FrozenClock) -> None:
    code, verifier = await agent.code_for()
    first = (await agent.exchange(code, verifier)).json()
    clock.advance(14 * 24 * 3600)
    response = await agent.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_public_client_completes_the_flow_with_pkce_only(
    agent: Agent, store: SQLiteStore
) -> None:
    await add_client(store, client_id="cli", auth_method="none", secret=None)
    public = Agent(agent.http, "cli")
    verifier = "p" * 43
    data = {**public.params(verifier), "client_id": "cli"}
    pushed = await agent.http.post("/par", data=data)
    assert pushed.status_code == 201
    interaction = await public.open(pushed.json()["request_uri"])
    await public.login(interaction)
    code = query_of((await public.decide(interaction)).headers["location"])["code"]
    response = await agent.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "cli",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
        },
    )
    assert response.status_code == 200, response.text


async def test_a_bad_narrowing_at_code_exchange_does_not_cost_the_code(agent: Agent) -> None:
    code, verifier = await agent.code_for()
    wrong = await agent.exchange(code, verifier, resource="https://elsewhere.example/")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_target"
    assert (await agent.exchange(code, verifier)).status_code == 200


async def test_redirect_uri_is_required_when_the_request_named_it(
    agent: Agent, store: SQLiteStore
) -> None:
    code, verifier = await agent.code_for()
    response = await agent.token(
        {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    async with store.reader() as tx:
        failed = (await tx.tail(1))[0]
    # The code is spent and the trail says why, so a retry is not mistaken for an attack.
    assert failed.type == "code.redemption_failed"
    assert failed.data["error"] == "invalid_request"


async def test_redirect_uri_may_be_omitted_when_the_request_omitted_it(agent: Agent) -> None:
    code, verifier = await agent.code_for(redirect_uri=None)
    response = await agent.token(
        {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    )
    assert response.status_code == 200, response.text

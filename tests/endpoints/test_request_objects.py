"""Signed request objects at the PAR endpoint (RFC 9101, RFC 9126 3): what they carry, what
is ignored beside them, and every refusal as 400 invalid_request_object."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from grantline.app import create_app
from grantline.models import AuditEvent, User
from grantline.protocol.pkce import s256_challenge
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import ISSUER, REDIRECT_URI, Agent, FrozenClock, csrf_of, new_verifier, query_of
from tests.jose_helpers import (
    AnyKey,
    JwtAgent,
    approve,
    dpop_proof,
    ec_key,
    ed_key,
    events,
    hs256_token,
    jwks_of,
    public_jwk,
    request_object,
    sign,
    thumbprint,
    unsigned_token,
)

FILES: dict[str, Any] = {"type": "file_access", "actions": ["read", "list"], "locations": ["/r"]}
FILES_API = "https://api.example/files"
PAYMENTS_API = "https://api.example/payments"


@pytest.fixture
def key() -> AnyKey:
    return ec_key("jar-1")


@pytest.fixture
async def jar(store: SQLiteStore, key: AnyKey, user: User) -> str:
    """A client_secret_basic client that also registered keys for its request objects."""
    await add_client(store, client_id="jar", jwks=jwks_of(key), resources=(FILES_API, PAYMENTS_API))
    return "jar"


@pytest.fixture
def jar_agent(http: httpx.AsyncClient, jar: str) -> Agent:
    return Agent(http, jar)


def auth_params(verifier: str, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "inbox.read",
        "state": "ro-state",
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def signed(key: AnyKey, now: int, verifier: str | None = None, **overrides: Any) -> str:
    claims = {k: v for k, v in overrides.items() if k in ("iss", "aud", "exp", "nbf", "iat")}
    params = {k: v for k, v in overrides.items() if k not in claims}
    params = auth_params(verifier or new_verifier(), **params)
    return request_object(key, "jar", params, now, **claims)


async def last_event(store: SQLiteStore) -> AuditEvent:
    async with store.reader() as tx:
        return (await tx.tail(1))[0]


async def refused(
    agent: Agent, store: SQLiteStore, data: dict[str, str], error: str = "invalid_request_object"
) -> str:
    response = await agent.push_raw(data)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"
    event = await last_event(store)
    assert event.type == "pushed_request.refused"
    assert event.data["error"] == error
    return str(body["error_description"])


# -- it works -------------------------------------------------------------------------------


async def test_a_signed_request_object_runs_the_whole_flow(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    verifier = new_verifier()
    response = await jar_agent.push_raw({"request": signed(key, clock.now, verifier)})
    assert response.status_code == 201, response.text
    accepted = (await events(store, "pushed_request.accepted"))[-1]
    assert accepted.client_id == "jar"
    assert accepted.data["scopes"] == ["inbox.read"]
    assert accepted.data["redirect_uri"] == REDIRECT_URI
    code = await approve(jar_agent, response.json()["request_uri"])
    tokens = await jar_agent.exchange(code, verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["scope"] == "inbox.read"


@pytest.mark.parametrize(
    ("typ", "alg", "make"),
    [
        pytest.param("JWT", None, lambda: ec_key("jar-1"), id="typ-JWT"),
        pytest.param(None, None, lambda: ec_key("jar-1"), id="no-typ"),
        pytest.param("oauth-authz-req+jwt", "EdDSA", lambda: ed_key("jar-1"), id="EdDSA"),
        pytest.param("oauth-authz-req+jwt", "Ed25519", lambda: ed_key("jar-1"), id="Ed25519"),
    ],
)
async def test_accepted_variants(
    http: httpx.AsyncClient,
    store: SQLiteStore,
    clock: FrozenClock,
    typ: str | None,
    alg: str | None,
    make: Callable[[], AnyKey],
) -> None:
    key = make()
    await add_client(store, client_id="jar", jwks=jwks_of(key))
    token = request_object(key, "jar", auth_params(new_verifier()), clock.now, typ=typ, alg=alg)
    response = await Agent(http, "jar").push_raw({"request": token})
    assert response.status_code == 201, response.text


async def test_parameters_beside_the_object_are_ignored(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    verifier = new_verifier()
    outside = {
        "request": signed(key, clock.now, verifier),
        "scope": "invoices.pay",
        "redirect_uri": "https://evil.example/cb",
        "state": "outside",
        "dpop_jkt": thumbprint(public_jwk(ec_key())),
        "client_id": "jar",
    }
    response = await jar_agent.push_raw(outside)
    assert response.status_code == 201, response.text
    accepted = (await events(store, "pushed_request.accepted"))[-1]
    assert accepted.data["scopes"] == ["inbox.read"]
    assert accepted.data["redirect_uri"] == REDIRECT_URI
    assert accepted.data.get("dpop_jkt") is None
    async with store.reader() as tx:
        assert accepted.request_id is not None
        stored = await tx.get_request(accepted.request_id)
    assert stored is not None
    assert stored.request.state == "ro-state"
    assert "invoices.pay" not in json.dumps(stored.raw_params)
    # The person is asked about what the object says, not what was beside it.
    interaction = await jar_agent.open(response.json()["request_uri"])
    await jar_agent.login(interaction)
    page = await jar_agent.http.get(interaction)
    assert "inbox.read" in page.text
    assert "invoices.pay" not in page.text
    # And the code works without the dpop_jkt that was only beside the object.
    decided = await jar_agent.decide(interaction)
    location = query_of(decided.headers["location"])
    assert location["state"] == "ro-state"
    tokens = await jar_agent.exchange(location["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "Bearer"


async def test_json_authorization_details_and_resource_arrays(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    verifier = new_verifier()
    token = signed(
        key,
        clock.now,
        verifier,
        authorization_details=[FILES],
        resource=[FILES_API, PAYMENTS_API],
    )
    response = await jar_agent.push_raw({"request": token})
    assert response.status_code == 201, response.text
    accepted = (await events(store, "pushed_request.accepted"))[-1]
    assert accepted.data["authorization_details"] == [FILES]
    assert accepted.data["resources"] == [FILES_API, PAYMENTS_API]
    interaction = await jar_agent.open(response.json()["request_uri"])
    await jar_agent.login(interaction)
    page = await jar_agent.http.get(interaction)
    decided = await jar_agent.http.post(
        f"{interaction}/decision",
        data={"csrf_token": csrf_of(page.text), "decision": "approve", "detail_0": "on"},
    )
    assert decided.status_code == 303, decided.text
    code = query_of(decided.headers["location"])["code"]
    tokens = (await jar_agent.exchange(code, verifier)).json()
    assert tokens["authorization_details"] == [FILES]


async def test_a_private_key_jwt_client_signs_both(
    http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock, user: User
) -> None:
    key = ec_key("k1")
    await add_client(
        store, client_id="jar", auth_method="private_key_jwt", secret=None, jwks=jwks_of(key)
    )
    agent = JwtAgent(http, key, clock, "jar")
    verifier = new_verifier()
    response = await agent.push_raw({"request": signed(key, clock.now, verifier)})
    assert response.status_code == 201, response.text
    code = await approve(agent, response.json()["request_uri"])
    assert (await agent.exchange(code, verifier)).status_code == 200


async def test_require_signed_request_object(
    http: httpx.AsyncClient, store: SQLiteStore, key: AnyKey, clock: FrozenClock
) -> None:
    await add_client(
        store, client_id="strict", jwks=jwks_of(key), require_signed_request_object=True
    )
    agent = Agent(http, "strict")
    description = await refused(agent, store, auth_params(new_verifier()), "invalid_request")
    assert "signed request object" in description
    token = request_object(key, "strict", auth_params(new_verifier()), clock.now)
    assert (await agent.push_raw({"request": token})).status_code == 201


async def test_a_dpop_jkt_inside_the_object_binds_the_code(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    dpop_key = ec_key()
    jkt = thumbprint(public_jwk(dpop_key))
    verifier = new_verifier()
    response = await jar_agent.push_raw({"request": signed(key, clock.now, verifier, dpop_jkt=jkt)})
    assert response.status_code == 201, response.text
    assert (await events(store, "pushed_request.accepted"))[-1].data["dpop_jkt"] == jkt
    # A DPoP header at PAR with another key contradicts the object.
    other = dpop_proof(ec_key(), clock.now, htu=f"{ISSUER}/par")
    data = {"request": signed(key, clock.now, dpop_jkt=jkt)}
    await refused_with_headers(jar_agent, store, data, {"DPoP": other})


async def refused_with_headers(
    agent: Agent, store: SQLiteStore, data: dict[str, str], headers: dict[str, str]
) -> None:
    response = await agent.push_raw(data, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


# -- refusals -------------------------------------------------------------------------------

_OTHER_KEY = ec_key("jar-1")  # another client's key, same kid


def _claims(now: int, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "jar",
        "aud": ISSUER,
        "exp": now + 60,
        "jti": f"forged-{now}",
        **auth_params(new_verifier()),
    }
    base.update(overrides)
    return base


REFUSALS: list[Any] = [
    pytest.param(
        lambda k, now: signed(_OTHER_KEY, now), "signature does not verify", id="other-clients-key"
    ),
    pytest.param(
        lambda k, now: unsigned_token(_claims(now), {"kid": "jar-1"}), "alg 'none'", id="alg-none"
    ),
    pytest.param(
        lambda k, now: hs256_token(k.as_pem(private=False), _claims(now), {"kid": "jar-1"}),
        "alg 'HS256'",
        id="hs256-public-key-secret",
    ),
    pytest.param(
        lambda k, now: request_object(k, "jar", auth_params(new_verifier()), now, typ="dpop+jwt"),
        "typ must be",
        id="typ-dpop",
    ),
    pytest.param(lambda k, now: signed(k, now, iss="agent"), "iss must be", id="other-iss"),
    pytest.param(
        lambda k, now: signed(k, now, aud="https://other.example"), "aud must be", id="other-aud"
    ),
    pytest.param(
        lambda k, now: signed(k, now, aud=f"{ISSUER}/par"), "aud must be", id="par-url-aud"
    ),
    pytest.param(
        lambda k, now: signed(k, now, iat=now - 400, nbf=now - 400, exp=now - 1),
        "expired",
        id="expired",
    ),
    pytest.param(lambda k, now: signed(k, now, exp=None), "no exp", id="no-exp"),
    pytest.param(
        lambda k, now: signed(k, now, exp=now + 3601), "lives too long", id="lifetime-too-long"
    ),
    pytest.param(
        lambda k, now: signed(k, now, nbf=now + 120, exp=now + 300), "not valid yet", id="nbf"
    ),
    pytest.param(
        lambda k, now: signed(k, now, request="eyJhbGciOiJub25lIn0.e30."),
        "must not contain request",
        id="nested-request",
    ),
    pytest.param(
        lambda k, now: signed(k, now, request_uri="urn:ietf:params:oauth:request_uri:abc"),
        "must not contain request",
        id="nested-request-uri",
    ),
    pytest.param(
        lambda k, now: signed(k, now, client_id="agent"), "client_id claim", id="client-id-claim"
    ),
    pytest.param(
        lambda k, now: signed(k, now, scope=["inbox.read"]), "must be a string", id="scope-list"
    ),
    pytest.param(
        lambda k, now: sign(k, b"[1, 2]", header={"typ": "oauth-authz-req+jwt"}),
        "not a JSON object",
        id="payload-array",
    ),
    pytest.param(lambda k, now: "not-a-jwt", "not a compact JWS", id="garbage"),
]


@pytest.mark.parametrize(("forge", "reason"), REFUSALS)
async def test_bad_request_objects_are_refused(
    jar_agent: Agent,
    key: AnyKey,
    clock: FrozenClock,
    store: SQLiteStore,
    forge: Callable[[AnyKey, int], str],
    reason: str,
) -> None:
    await add_client(store, client_id="other", jwks=jwks_of(_OTHER_KEY))
    description = await refused(jar_agent, store, {"request": forge(key, clock.now)})
    assert reason in description


async def test_a_replayed_request_object_is_refused(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    token = signed(key, clock.now)
    assert (await jar_agent.push_raw({"request": token})).status_code == 201
    clock.advance(30)
    assert "already used" in await refused(jar_agent, store, {"request": token})


async def test_a_replayed_object_without_jti_is_caught_by_its_digest(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    token = request_object(key, "jar", auth_params(new_verifier()), clock.now, jti=None)
    assert (await jar_agent.push_raw({"request": token})).status_code == 201
    assert "already used" in await refused(jar_agent, store, {"request": token})
    # A different object without jti is a different object.
    fresh = request_object(key, "jar", auth_params(new_verifier()), clock.now, jti=None)
    assert (await jar_agent.push_raw({"request": fresh})).status_code == 201


async def test_a_reused_jti_is_refused_even_in_a_new_object(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    first = request_object(key, "jar", auth_params(new_verifier()), clock.now, jti="same")
    second = request_object(key, "jar", auth_params(new_verifier()), clock.now, jti="same")
    assert (await jar_agent.push_raw({"request": first})).status_code == 201
    assert "already used" in await refused(jar_agent, store, {"request": second})


async def test_replay_is_refused_by_another_process(
    jar_agent: Agent,
    key: AnyKey,
    clock: FrozenClock,
    settings: Settings,
    db_path: object,
) -> None:
    token = signed(key, clock.now)
    assert (await jar_agent.push_raw({"request": token})).status_code == 201
    other_store = SQLiteStore(str(db_path))
    try:
        transport = httpx.ASGITransport(app=create_app(settings, other_store, clock=clock))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as second:
            response = await Agent(second, "jar").push_raw({"request": token})
    finally:
        other_store._conn.close()
        other_store._read_conn.close()
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request_object"


async def test_a_client_without_keys_cannot_push_an_object(
    agent: Agent, clock: FrozenClock, store: SQLiteStore
) -> None:
    token = request_object(ec_key(), "agent", auth_params(new_verifier()), clock.now)
    assert "no registered keys" in await refused(agent, store, {"request": token})


async def test_a_conflicting_client_id_beside_the_object_is_refused(
    jar_agent: Agent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    # The authenticated client is jar; a client_id naming another client beside its object is
    # refused before the object is even looked at.
    response = await jar_agent.push_raw({"request": signed(key, clock.now), "client_id": "agent"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await events(store, "pushed_request.accepted") == []


async def test_an_object_for_another_client_is_refused(
    jar_agent: Agent, clock: FrozenClock, store: SQLiteStore
) -> None:
    # The other client signs a perfectly good object naming itself; jar presents it.
    other_key = ec_key("jar-1")
    await add_client(store, client_id="other", jwks=jwks_of(other_key))
    token = request_object(other_key, "other", auth_params(new_verifier()), clock.now)
    description = await refused(jar_agent, store, {"request": token})
    assert "signature does not verify" in description


async def test_an_overflowing_exp_is_an_invalid_request_object(
    jar_agent: Agent, key: AnyKey, store: SQLiteStore
) -> None:
    payload = (
        '{"iss": "jar", "aud": "' + ISSUER + '", "exp": 1e400, "response_type": "code"}'
    ).encode()
    description = await refused(jar_agent, store, {"request": sign(key, payload)})
    assert "exp is out of range" in description

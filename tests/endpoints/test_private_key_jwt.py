"""private_key_jwt (RFC 7523) at PAR, token and introspection, from the attacker's side: every
refusal is 401 invalid_client and audited against the client it targeted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from grantline.app import create_app
from grantline.client_keys import ClientKeys
from grantline.models import User
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import CLIENT_SECRET, ISSUER, Agent, FrozenClock, database_bytes, new_verifier
from tests.jose_helpers import (
    AnyKey,
    JwtAgent,
    approve,
    assertion_form,
    client_assertion,
    ec_key,
    ed_key,
    events,
    hs256_token,
    jwks_of,
    public_jwk,
    rsa_key,
    sign,
    unsigned_token,
)

PAR_URL = f"{ISSUER}/par"
TOKEN_URL = f"{ISSUER}/token"


@pytest.fixture
def key() -> AnyKey:
    return ec_key("k1")


@pytest.fixture
async def signer(store: SQLiteStore, key: AnyKey) -> str:
    await add_client(
        store, client_id="signer", auth_method="private_key_jwt", secret=None, jwks=jwks_of(key)
    )
    return "signer"


@pytest.fixture
async def jwt_agent(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str, user: User
) -> JwtAgent:
    return JwtAgent(http, key, clock, signer)


async def par_with(
    http: httpx.AsyncClient, assertion: str, client_id: str | None = "signer", **extra: Any
) -> httpx.Response:
    data = {**Agent(http).params(new_verifier()), **assertion_form(assertion, client_id)}
    return await http.post("/par", data=data, **extra)


async def assert_refused(response: httpx.Response, store: SQLiteStore, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["cache-control"] == "no-store"
    failed = await events(store, "client.authentication_failed")
    assert failed, "the refusal was not audited"
    assert failed[-1].client_id == "signer"
    assert failed[-1].data["method"] == "private_key_jwt"
    assert reason in failed[-1].data["reason"]


# -- it works -------------------------------------------------------------------------------


async def test_private_key_jwt_at_par_and_token(
    jwt_agent: JwtAgent, store: SQLiteStore, db_path: object
) -> None:
    code, verifier = await jwt_agent.code_for()
    response = await jwt_agent.exchange(code, verifier)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    issued = await events(store, "token.issued")
    assert issued[-1].client_id == "signer"
    # Assertions are credentials: never kept with the request or anywhere else.
    accepted = (await events(store, "pushed_request.accepted"))[-1]
    assert accepted.request_id is not None
    async with store.reader() as tx:
        stored = await tx.get_request(accepted.request_id)
    assert stored is not None
    assert not {"client_assertion", "client_assertion_type"} & set(stored.raw_params)
    assert b"client-assertion-type" not in database_bytes(db_path)


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        pytest.param(lambda: ed_key("k1"), "Ed25519", id="Ed25519"),
        pytest.param(lambda: ed_key("k1"), "EdDSA", id="EdDSA"),
        pytest.param(lambda: rsa_key("k1"), "PS256", id="PS256"),
    ],
)
async def test_every_allowed_algorithm_authenticates(
    http: httpx.AsyncClient,
    store: SQLiteStore,
    clock: FrozenClock,
    make: Callable[[], AnyKey],
    alg: str,
) -> None:
    key = make()
    await add_client(
        store, client_id="signer", auth_method="private_key_jwt", secret=None, jwks=jwks_of(key)
    )
    response = await par_with(http, client_assertion(key, "signer", clock.now, alg=alg))
    assert response.status_code == 201, response.text


async def test_without_client_id_the_sub_names_the_client(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str
) -> None:
    response = await par_with(http, client_assertion(key, signer, clock.now), client_id=None)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "aud"),
    [
        ("/par", ISSUER),
        ("/par", PAR_URL),
        ("/par", TOKEN_URL),
        ("/par", ["https://other.example", ISSUER]),
    ],
)
async def test_accepted_audiences(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str, path: str, aud: Any
) -> None:
    # RFC 9126 2: "MUST accept its issuer identifier, token endpoint URL, or pushed
    # authorization request endpoint URL".
    response = await par_with(http, client_assertion(key, signer, clock.now, aud=aud))
    assert response.status_code == 201, response.text


async def test_token_endpoint_audiences(
    jwt_agent: JwtAgent, key: AnyKey, clock: FrozenClock, store: SQLiteStore
) -> None:
    for aud in (ISSUER, TOKEN_URL):
        code, verifier = await jwt_agent.code_for()
        jwt_agent.aud = aud
        assert (await jwt_agent.exchange(code, verifier)).status_code == 200
        jwt_agent.aud = ISSUER
    code, verifier = await jwt_agent.code_for()
    jwt_agent.aud = PAR_URL  # the PAR endpoint's URL is no audience at the token endpoint
    response = await jwt_agent.exchange(code, verifier)
    await assert_refused(response, store, "aud")


# -- replay ---------------------------------------------------------------------------------


async def test_a_replayed_assertion_is_refused(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str, store: SQLiteStore
) -> None:
    assertion = client_assertion(key, signer, clock.now, exp=clock.now + 600)
    assert (await par_with(http, assertion)).status_code == 201
    clock.advance(300)
    await assert_refused(await par_with(http, assertion), store, "assertion replayed")
    # Nor at another endpoint.
    response = await http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", **assertion_form(assertion)},
    )
    await assert_refused(response, store, "assertion replayed")


async def test_the_same_jti_is_single_use_even_in_a_new_assertion(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str, store: SQLiteStore
) -> None:
    first = await par_with(http, client_assertion(key, signer, clock.now, jti="j"))
    assert first.status_code == 201
    again = client_assertion(key, signer, clock.now, jti="j", exp=clock.now + 30)
    await assert_refused(await par_with(http, again), store, "assertion replayed")


async def test_replay_is_refused_by_another_process_on_the_same_database(
    http: httpx.AsyncClient,
    settings: Settings,
    db_path: object,
    key: AnyKey,
    clock: FrozenClock,
    signer: str,
) -> None:
    assertion = client_assertion(key, signer, clock.now)
    assert (await par_with(http, assertion)).status_code == 201
    other_store = SQLiteStore(str(db_path))
    try:
        other = create_app(settings, other_store, clock=clock)
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as second:
            response = await par_with(second, assertion)
    finally:
        other_store._conn.close()
        other_store._read_conn.close()
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# -- forged and malformed assertions --------------------------------------------------------


#: Another registered client's key, with the same kid as the signer's.
_OTHER_KEY = ec_key("k1")

FORGERIES: list[Any] = [
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, aud="https://other.example"),
        "aud",
        id="other-audience",
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, aud=ISSUER + "/authorize"),
        "aud",
        id="authorize-endpoint-audience",
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now - 120, exp=now - 60),
        "expired",
        id="expired",
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, exp=now + 3601),
        "too far in the future",
        id="far-future-exp",
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, exp=None), "exp is required", id="no-exp"
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, jti=None),
        "jti is required",
        id="missing-jti",
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, sub="victim"), "iss and sub", id="sub"
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, iss="mallory"), "iss and sub", id="iss"
    ),
    pytest.param(
        lambda k, now: client_assertion(k, "signer", now, nbf=now + 120),
        "not valid yet",
        id="not-yet-valid",
    ),
    pytest.param(
        lambda k, now: client_assertion(_OTHER_KEY, "signer", now),
        "signature does not verify",
        id="signed-by-another-clients-key",
    ),
    pytest.param(
        lambda k, now: client_assertion(ec_key("unknown"), "signer", now),
        "no key with kid",
        id="unknown-kid",
    ),
    pytest.param(
        lambda k, now: unsigned_token(
            {"iss": "signer", "sub": "signer", "aud": ISSUER, "exp": now + 60, "jti": "n"},
            {"kid": "k1"},
        ),
        "alg 'none'",
        id="alg-none",
    ),
    pytest.param(
        lambda k, now: hs256_token(
            k.as_pem(private=False),
            {"iss": "signer", "sub": "signer", "aud": ISSUER, "exp": now + 60, "jti": "h"},
            {"kid": "k1"},
        ),
        "alg 'HS256'",
        id="hs256-with-public-key-as-secret",
    ),
    pytest.param(
        lambda k, now: client_assertion(rsa_key("k1"), "signer", now, alg="RS256"),
        "alg 'RS256'",
        id="rs256-not-on-the-list",
    ),
    pytest.param(
        # The attacker's own key, private half and all, in the header: it must be ignored.
        lambda k, now: client_assertion(
            _OTHER_KEY, "signer", now, header={"jwk": _OTHER_KEY.as_dict(private=True)}
        ),
        "signature does not verify",
        id="embedded-private-jwk",
    ),
    pytest.param(lambda k, now: "not-a-jwt", "not a compact JWS", id="garbage"),
]


@pytest.mark.parametrize(("forge", "reason"), FORGERIES)
async def test_forged_assertions_are_refused_at_par(
    http: httpx.AsyncClient,
    key: AnyKey,
    clock: FrozenClock,
    signer: str,
    store: SQLiteStore,
    forge: Callable[[AnyKey, int], str],
    reason: str,
) -> None:
    await add_client(
        store,
        client_id="other",
        auth_method="private_key_jwt",
        secret=None,
        jwks=jwks_of(_OTHER_KEY),
    )
    await assert_refused(await par_with(http, forge(key, clock.now)), store, reason)
    async with store.reader() as tx:
        assert not [e for e in await tx.tail(10) if e.type == "pushed_request.accepted"]


@pytest.mark.parametrize(("forge", "reason"), FORGERIES[:4])
async def test_forged_assertions_are_refused_at_token(
    jwt_agent: JwtAgent,
    key: AnyKey,
    clock: FrozenClock,
    store: SQLiteStore,
    forge: Callable[[AnyKey, int], str],
    reason: str,
) -> None:
    code, verifier = await jwt_agent.code_for()
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        **assertion_form(forge(key, clock.now), "signer"),
    }
    await assert_refused(await jwt_agent.http.post("/token", data=data), store, reason)
    # The code was not touched: the genuine client still redeems it.
    assert (await jwt_agent.exchange(code, verifier)).status_code == 200


async def test_client_id_beside_the_assertion_must_be_its_subject(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str, store: SQLiteStore
) -> None:
    await add_client(
        store, client_id="victim", auth_method="private_key_jwt", secret=None, jwks=jwks_of(key)
    )
    response = await par_with(http, client_assertion(key, signer, clock.now), client_id="victim")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    failed = (await events(store, "client.authentication_failed"))[-1]
    assert failed.client_id == "victim"


async def test_registered_private_keys_are_refused(
    http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock
) -> None:
    key = ec_key("k1")
    await add_client(
        store,
        client_id="signer",
        auth_method="private_key_jwt",
        secret=None,
        jwks={"keys": [key.as_dict(private=True)]},
    )
    response = await par_with(http, client_assertion(key, "signer", clock.now))
    await assert_refused(response, store, "private key material")


async def test_a_client_without_keys_cannot_authenticate(
    http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock
) -> None:
    await add_client(store, client_id="signer", auth_method="private_key_jwt", secret=None)
    response = await par_with(http, client_assertion(ec_key(), "signer", clock.now))
    await assert_refused(response, store, "no registered keys")


async def test_methods_cannot_be_swapped(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str, store: SQLiteStore
) -> None:
    # A secret client with keys on file still may not use an assertion ...
    await add_client(store, client_id="secretive", jwks=jwks_of(key))
    assertion = client_assertion(key, "secretive", clock.now)
    response = await par_with(http, assertion, client_id="secretive")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # ... and a private_key_jwt client may not fall back to a secret or to nothing.
    basic = await Agent(http, "signer").push_raw(Agent(http).params(new_verifier()))
    assert basic.status_code == 401
    assert basic.json()["error"] == "invalid_client"
    bare = await http.post("/par", data={**Agent(http).params(new_verifier()), "client_id": signer})
    assert bare.status_code == 401
    assert bare.json()["error"] == "invalid_client"


async def test_two_methods_at_once_are_invalid_request(
    http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str
) -> None:
    assertion = client_assertion(key, signer, clock.now)
    response = await par_with(http, assertion, auth=(signer, CLIENT_SECRET))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_an_unknown_client_is_refused_without_an_audit_entry(
    http: httpx.AsyncClient, clock: FrozenClock, store: SQLiteStore
) -> None:
    response = await par_with(http, client_assertion(ec_key(), "ghost", clock.now), "ghost")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert await events(store, "client.authentication_failed") == []


async def test_introspection_with_private_key_jwt(jwt_agent: JwtAgent) -> None:
    code, verifier = await jwt_agent.code_for()
    tokens = (await jwt_agent.exchange(code, verifier)).json()
    response = await jwt_agent.http.post(
        "/introspect", data={"token": tokens["access_token"], **jwt_agent.credentials()}
    )
    assert response.status_code == 200
    assert response.json()["active"] is True
    assert response.json()["client_id"] == "signer"


# -- jwks_uri -------------------------------------------------------------------------------


class RotatingJwks:
    def __init__(self, *keys: AnyKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.down = False

    async def __call__(self, uri: str) -> bytes:
        assert uri == "https://signer.example/jwks"
        self.fetches += 1
        if self.down:
            raise httpx.ConnectError("jwks_uri is down")
        return json.dumps({"keys": [public_jwk(k) for k in self.keys]}).encode()


@pytest.fixture
async def uri_signer(store: SQLiteStore) -> str:
    await add_client(
        store,
        client_id="signer",
        auth_method="private_key_jwt",
        secret=None,
        jwks_uri="https://signer.example/jwks",
    )
    return "signer"


@pytest.fixture
def jwks_uri() -> RotatingJwks:
    return RotatingJwks(ec_key("k1"))


@pytest.fixture
async def uri_http(
    settings: Settings, store: SQLiteStore, clock: FrozenClock, jwks_uri: RotatingJwks
) -> AsyncIterator[httpx.AsyncClient]:
    keys = ClientKeys(jwks_uri, ttl=300, min_interval=10, clock=clock)
    app: Starlette = create_app(settings, store, clock=clock, client_keys=keys)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


async def test_an_unknown_kid_refetches_the_jwks_uri_once(
    uri_http: httpx.AsyncClient,
    uri_signer: str,
    jwks_uri: RotatingJwks,
    clock: FrozenClock,
    store: SQLiteStore,
) -> None:
    first = jwks_uri.keys[0]
    for _ in range(2):
        response = await par_with(uri_http, client_assertion(first, uri_signer, clock.now))
        assert response.status_code == 201, response.text
    assert jwks_uri.fetches == 1
    # The client rotates to k2; the server sees an unknown kid and fetches once.
    clock.advance(10)
    rotated = ec_key("k2")
    jwks_uri.keys = [rotated]
    response = await par_with(uri_http, client_assertion(rotated, uri_signer, clock.now))
    assert response.status_code == 201, response.text
    assert jwks_uri.fetches == 2
    # Random kids right after are answered from the cache, without fetching.
    for n in range(3):
        forged = client_assertion(ec_key(f"random-{n}"), uri_signer, clock.now)
        response = await par_with(uri_http, forged)
        assert response.status_code == 401
    assert jwks_uri.fetches == 2
    failed = await events(store, "client.authentication_failed")
    assert "no key with kid 'random-2'" in failed[-1].data["reason"]


async def test_a_rotated_key_is_not_found_within_the_rate_limit(
    uri_http: httpx.AsyncClient, uri_signer: str, jwks_uri: RotatingJwks, clock: FrozenClock
) -> None:
    first = await par_with(uri_http, client_assertion(jwks_uri.keys[0], uri_signer, clock.now))
    assert first.status_code == 201
    clock.advance(9)
    rotated = ec_key("k2")
    jwks_uri.keys = [rotated]
    early = await par_with(uri_http, client_assertion(rotated, uri_signer, clock.now))
    assert early.status_code == 401
    assert jwks_uri.fetches == 1
    clock.advance(1)
    late = await par_with(uri_http, client_assertion(rotated, uri_signer, clock.now))
    assert late.status_code == 201
    assert jwks_uri.fetches == 2


async def test_a_down_jwks_uri_without_cache_is_invalid_client(
    uri_http: httpx.AsyncClient,
    uri_signer: str,
    jwks_uri: RotatingJwks,
    clock: FrozenClock,
    store: SQLiteStore,
) -> None:
    jwks_uri.down = True
    response = await par_with(uri_http, client_assertion(jwks_uri.keys[0], uri_signer, clock.now))
    await assert_refused(response, store, "could not be fetched (ConnectError)")


async def test_a_down_jwks_uri_with_cache_keeps_known_keys_working(
    uri_http: httpx.AsyncClient, uri_signer: str, jwks_uri: RotatingJwks, clock: FrozenClock
) -> None:
    key = jwks_uri.keys[0]
    first = await par_with(uri_http, client_assertion(key, uri_signer, clock.now))
    assert first.status_code == 201
    jwks_uri.down = True
    clock.advance(400)  # past the ttl: a refetch is tried, fails, and the cache answers
    response = await par_with(uri_http, client_assertion(key, uri_signer, clock.now))
    assert response.status_code == 201, response.text
    assert jwks_uri.fetches == 2


async def test_an_overflowing_exp_is_invalid_client(
    http: httpx.AsyncClient, key: AnyKey, signer: str, store: SQLiteStore
) -> None:
    payload = (
        f'{{"iss": "signer", "sub": "signer", "aud": "{ISSUER}", "jti": "x", "exp": 1e400}}'
    ).encode()
    response = await par_with(http, sign(key, payload))
    await assert_refused(response, store, "exp is out of range")


async def test_a_pushed_request_authenticated_by_assertion_completes(
    jwt_agent: JwtAgent, clock: FrozenClock
) -> None:
    pushed = await jwt_agent.push()
    code = await approve(jwt_agent, pushed.request_uri)
    tokens = await jwt_agent.exchange(code, pushed.verifier)
    assert tokens.status_code == 200
    refreshed = await jwt_agent.token(
        {"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text

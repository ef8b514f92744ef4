"""DPoP (RFC 9449) at PAR and the token endpoint: binding codes, access and refresh tokens to
a key, every refused proof, replay across processes, and server nonces."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from grantline.app import create_app
from grantline.models import User
from grantline.protocol.dpop import NONCE_PERIOD, nonce_for
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import SECRET_KEY, add_client
from tests.helpers import CLIENT_SECRET, ISSUER, REDIRECT_URI, Agent, FrozenClock, new_verifier
from tests.jose_helpers import (
    AnyKey,
    JwtAgent,
    access_token_claims,
    approve,
    b64url,
    dpop_proof,
    ec_key,
    ed_key,
    events,
    hs256_token,
    jwks_of,
    public_jwk,
    request_object,
    rsa_key,
    sign,
    thumbprint,
    unsigned_token,
)

PAR_URL = f"{ISSUER}/par"
TOKEN_URL = f"{ISSUER}/token"


def jkt(key: AnyKey) -> str:
    return thumbprint(public_jwk(key))


def proof_header(
    key: AnyKey, clock: FrozenClock, htu: str = TOKEN_URL, **claims: Any
) -> dict[str, str]:
    return {"DPoP": dpop_proof(key, clock.now, htu=htu, **claims)}


async def bound_code(agent: Agent, key: AnyKey, clock: FrozenClock) -> tuple[str, str]:
    """A code bound to ``key`` by a DPoP proof at PAR; returns (code, verifier)."""
    verifier = new_verifier()
    response = await agent.push_raw(
        agent.params(verifier), headers=proof_header(key, clock, PAR_URL)
    )
    assert response.status_code == 201, response.text
    return await approve(agent, response.json()["request_uri"]), verifier


async def exchange(
    agent: Agent, code: str, verifier: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
    }
    return await agent.token(data, headers=headers or {})


async def refresh(
    agent: Agent, token: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return await agent.token(data, headers=headers or {})


def assert_error(response: httpx.Response, error: str) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    return str(response.json()["error_description"])


# -- binding and issuing --------------------------------------------------------------------


async def test_a_proof_at_par_binds_the_code_and_the_access_token(
    agent: Agent, clock: FrozenClock, store: SQLiteStore
) -> None:
    key = ec_key()
    code, verifier = await bound_code(agent, key, clock)
    accepted = (await events(store, "pushed_request.accepted"))[-1]
    assert accepted.data["dpop_jkt"] == jkt(key)
    response = await exchange(agent, code, verifier, proof_header(key, clock))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    claims = await access_token_claims(agent.http, body["access_token"])
    assert claims["cnf"] == {"jkt": jkt(key)}
    issued = (await events(store, "token.issued"))[-1]
    assert issued.data["token_type"] == "DPoP"
    assert issued.data["dpop_jkt"] == jkt(key)
    described = await agent.http.post(
        "/introspect", data={"token": body["access_token"]}, auth=("agent", CLIENT_SECRET)
    )
    assert described.json()["token_type"] == "DPoP"
    assert described.json()["cnf"] == {"jkt": jkt(key)}


async def test_dpop_jkt_at_par_binds_without_a_proof(agent: Agent, clock: FrozenClock) -> None:
    key = ed_key()
    code, verifier = await agent.code_for(dpop_jkt=jkt(key))
    other = await exchange(agent, code, verifier, proof_header(ec_key(), clock))
    assert "another key" in assert_error(other, "invalid_grant")
    response = await exchange(agent, code, verifier, proof_header(key, clock))
    assert response.status_code == 200, response.text
    claims = await access_token_claims(agent.http, response.json()["access_token"])
    assert claims["cnf"]["jkt"] == jkt(key)


async def test_a_matching_dpop_jkt_and_proof_at_par_agree(agent: Agent, clock: FrozenClock) -> None:
    key = ec_key()
    verifier = new_verifier()
    response = await agent.push_raw(
        agent.params(verifier, dpop_jkt=jkt(key)), headers=proof_header(key, clock, PAR_URL)
    )
    assert response.status_code == 201, response.text


async def test_a_dpop_jkt_that_contradicts_the_proof_at_par_is_refused(
    agent: Agent, clock: FrozenClock, store: SQLiteStore
) -> None:
    response = await agent.push_raw(
        agent.params(new_verifier(), dpop_jkt=jkt(ec_key())),
        headers=proof_header(ec_key(), clock, PAR_URL),
    )
    assert_error(response, "invalid_dpop_proof")
    refused = (await events(store, "pushed_request.refused"))[-1]
    assert refused.data["error"] == "invalid_dpop_proof"


async def test_a_malformed_dpop_jkt_is_invalid_request(agent: Agent) -> None:
    response = await agent.push_raw(agent.params(new_verifier(), dpop_jkt="not-a-thumbprint"))
    assert_error(response, "invalid_request")


async def test_a_bound_code_needs_a_proof_and_survives_its_absence(
    agent: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    code, verifier = await bound_code(agent, key, clock)
    assert "bound key is required" in assert_error(
        await exchange(agent, code, verifier), "invalid_dpop_proof"
    )
    assert (await exchange(agent, code, verifier, proof_header(key, clock))).status_code == 200


async def test_a_proof_by_another_key_than_the_bound_one_is_invalid_grant(
    agent: Agent, clock: FrozenClock, store: SQLiteStore
) -> None:
    key = ec_key()
    code, verifier = await bound_code(agent, key, clock)
    attacker = await exchange(agent, code, verifier, proof_header(ec_key(), clock))
    assert_error(attacker, "invalid_grant")
    # The attacker could not burn it: no replay was recorded and the holder still redeems it.
    assert await events(store, "code.replayed") == []
    assert (await exchange(agent, code, verifier, proof_header(key, clock))).status_code == 200


async def test_an_unbound_code_with_a_proof_gets_a_dpop_token(
    agent: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    code, verifier = await agent.code_for()
    response = await exchange(agent, code, verifier, proof_header(key, clock))
    assert response.json()["token_type"] == "DPoP"
    claims = await access_token_claims(agent.http, response.json()["access_token"])
    assert claims["cnf"] == {"jkt": jkt(key)}


async def test_without_a_proof_tokens_stay_bearer(agent: Agent) -> None:
    code, verifier = await agent.code_for()
    body = (await exchange(agent, code, verifier)).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in await access_token_claims(agent.http, body["access_token"])


async def test_a_confidential_clients_refresh_token_is_not_bound(
    agent: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    code, verifier = await bound_code(agent, key, clock)
    body = (await exchange(agent, code, verifier, proof_header(key, clock))).json()
    # RFC 9449 5: the client authenticates, so its refresh token needs no key.
    plain = await refresh(agent, body["refresh_token"])
    assert plain.status_code == 200, plain.text
    assert plain.json()["token_type"] == "Bearer"
    rebound = await refresh(agent, plain.json()["refresh_token"], proof_header(ec_key(), clock))
    assert rebound.json()["token_type"] == "DPoP"


@pytest.fixture
async def public(http: httpx.AsyncClient, store: SQLiteStore, user: User) -> Agent:
    await add_client(store, client_id="public", auth_method="none", secret=None)
    return PublicAgent(http, "public")


class PublicAgent(Agent):
    async def push_raw(self, data: Any, **kwargs: Any) -> httpx.Response:
        return await self.http.post("/par", data={"client_id": self.client_id, **data}, **kwargs)

    async def token(self, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        return await self.http.post("/token", data={"client_id": self.client_id, **data}, **kwargs)


async def test_a_public_clients_refresh_token_needs_the_same_key(
    public: Agent, clock: FrozenClock, store: SQLiteStore
) -> None:
    key = ec_key()
    code, verifier = await bound_code(public, key, clock)
    first = (await exchange(public, code, verifier, proof_header(key, clock))).json()
    token = first["refresh_token"]
    assert_error(await refresh(public, token), "invalid_dpop_proof")
    assert_error(await refresh(public, token, proof_header(ec_key(), clock)), "invalid_grant")
    # Neither attempt consumed it: the key holder still rotates it, and the new one is bound.
    assert await events(store, "refresh_token.reused") == []
    second = await refresh(public, token, proof_header(key, clock))
    assert second.status_code == 200, second.text
    assert second.json()["token_type"] == "DPoP"
    assert_error(await refresh(public, second.json()["refresh_token"]), "invalid_dpop_proof")
    third = await refresh(public, second.json()["refresh_token"], proof_header(key, clock))
    assert third.status_code == 200


async def test_dpop_bound_access_tokens_client_must_send_a_proof(
    http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock, user: User
) -> None:
    await add_client(store, client_id="bound", dpop_bound_access_tokens=True)
    agent = Agent(http, "bound")
    code, verifier = await agent.code_for()
    assert "must prove possession" in assert_error(
        await exchange(agent, code, verifier), "invalid_dpop_proof"
    )
    key = ec_key()
    body = (await exchange(agent, code, verifier, proof_header(key, clock))).json()
    assert body["token_type"] == "DPoP"
    assert_error(await refresh(agent, body["refresh_token"]), "invalid_dpop_proof")
    assert (await refresh(agent, body["refresh_token"], proof_header(key, clock))).json()[
        "token_type"
    ] == "DPoP"


# -- refused proofs -------------------------------------------------------------------------


def _hs256(key: AnyKey, now: int) -> str:
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": now, "jti": "hs"}
    return hs256_token(
        b"s" * 32, claims, {"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": b64url(b"s" * 32)}}
    )


def _none(key: AnyKey, now: int) -> str:
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": now, "jti": "none"}
    return unsigned_token(claims, {"typ": "dpop+jwt", "jwk": public_jwk(key)})


BAD_PROOFS: list[Any] = [
    pytest.param(lambda k, now: dpop_proof(k, now, htm="GET"), "htm", id="other-method"),
    pytest.param(lambda k, now: dpop_proof(k, now, htu=PAR_URL), "htu", id="other-url"),
    pytest.param(
        lambda k, now: dpop_proof(k, now, htu="https://127.0.0.1:8000/token"), "htu", id="https"
    ),
    pytest.param(lambda k, now: dpop_proof(k, now - 301), "iat", id="stale-iat"),
    pytest.param(lambda k, now: dpop_proof(k, now + 61), "iat", id="future-iat"),
    pytest.param(lambda k, now: dpop_proof(k, now, jti=None), "jti is required", id="no-jti"),
    pytest.param(
        lambda k, now: dpop_proof(k, now, jwk=k.as_dict(private=True)),
        "private key material",
        id="private-key-in-jwk",
    ),
    pytest.param(_hs256, "not an asymmetric", id="symmetric-jwk"),
    pytest.param(_none, "alg 'none'", id="alg-none"),
    pytest.param(lambda k, now: dpop_proof(k, now, typ="JWT"), "typ must be", id="typ-jwt"),
    pytest.param(
        lambda k, now: dpop_proof(ec_key(), now, jwk=public_jwk(k)),
        "signature does not verify",
        id="signed-by-another-key",
    ),
    pytest.param(
        lambda k, now: sign(
            k, {"htm": "POST", "htu": TOKEN_URL, "iat": now, "jti": "x"}, header={"typ": "dpop+jwt"}
        ),
        "jwk is not",
        id="kid-instead-of-jwk",
    ),
]


@pytest.mark.parametrize(("forge", "reason"), BAD_PROOFS)
async def test_bad_proofs_are_refused_at_the_token_endpoint(
    agent: Agent, clock: FrozenClock, forge: Callable[[AnyKey, int], str], reason: str
) -> None:
    code, verifier = await agent.code_for()
    response = await exchange(agent, code, verifier, {"DPoP": forge(ec_key("k"), clock.now)})
    assert reason in assert_error(response, "invalid_dpop_proof")
    # The proof is checked before the grant: the code is still good.
    assert (await exchange(agent, code, verifier)).status_code == 200


PAR_BAD_PROOFS: list[Any] = [
    pytest.param(lambda k, now: dpop_proof(k, now, htu=PAR_URL, htm="GET"), "htm", id="method"),
    pytest.param(lambda k, now: dpop_proof(k, now, htu=TOKEN_URL), "htu", id="token-url"),
    pytest.param(lambda k, now: dpop_proof(k, now - 301, htu=PAR_URL), "iat", id="stale-iat"),
    pytest.param(lambda k, now: dpop_proof(k, now + 61, htu=PAR_URL), "iat", id="future-iat"),
    pytest.param(
        lambda k, now: dpop_proof(k, now, htu=PAR_URL, jti=None), "jti is required", id="no-jti"
    ),
    pytest.param(
        lambda k, now: dpop_proof(k, now, htu=PAR_URL, jwk=k.as_dict(private=True)),
        "private key material",
        id="private-key-in-jwk",
    ),
    pytest.param(
        lambda k, now: dpop_proof(k, now, htu=PAR_URL, typ="oauth-authz-req+jwt"),
        "typ must be",
        id="typ-jar",
    ),
]


@pytest.mark.parametrize(("forge", "reason"), PAR_BAD_PROOFS)
async def test_bad_proofs_are_refused_at_par(
    agent: Agent,
    clock: FrozenClock,
    store: SQLiteStore,
    forge: Callable[[AnyKey, int], str],
    reason: str,
) -> None:
    proof = forge(ec_key(), clock.now)
    response = await agent.push_raw(agent.params(new_verifier()), headers={"DPoP": proof})
    assert reason in assert_error(response, "invalid_dpop_proof")
    refused = (await events(store, "pushed_request.refused"))[-1]
    assert refused.data["error"] == "invalid_dpop_proof"
    assert await events(store, "pushed_request.accepted") == []


async def test_a_proof_for_par_is_not_valid_at_the_token_endpoint(
    agent: Agent, clock: FrozenClock
) -> None:
    code, verifier = await agent.code_for()
    response = await exchange(agent, code, verifier, proof_header(ec_key(), clock, PAR_URL))
    assert "htu" in assert_error(response, "invalid_dpop_proof")


async def test_htu_ignores_query_and_fragment(agent: Agent, clock: FrozenClock) -> None:
    code, verifier = await agent.code_for()
    headers = proof_header(ec_key(), clock, f"{TOKEN_URL}?a=b#c")
    assert (await exchange(agent, code, verifier, headers)).status_code == 200


async def test_two_dpop_headers_are_refused(agent: Agent, clock: FrozenClock) -> None:
    code, verifier = await agent.code_for()
    key = ec_key()
    headers = [("DPoP", dpop_proof(key, clock.now)), ("DPoP", dpop_proof(key, clock.now))]
    response = await agent.token(
        {"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
        headers=headers,
    )
    assert "exactly one" in assert_error(response, "invalid_dpop_proof")


async def test_a_replayed_proof_is_refused(agent: Agent, clock: FrozenClock) -> None:
    key = ec_key()
    proof = dpop_proof(key, clock.now)
    code, verifier = await agent.code_for()
    first = (await exchange(agent, code, verifier, {"DPoP": proof})).json()
    clock.advance(5)
    replay = await refresh(agent, first["refresh_token"], {"DPoP": proof})
    assert "already used" in assert_error(replay, "invalid_dpop_proof")
    # The refresh token is untouched by the refused request.
    retry = await refresh(agent, first["refresh_token"], proof_header(key, clock))
    assert retry.status_code == 200, retry.text


async def test_a_replayed_proof_is_refused_at_par(agent: Agent, clock: FrozenClock) -> None:
    proof = {"DPoP": dpop_proof(ec_key(), clock.now, htu=PAR_URL)}
    assert (await agent.push_raw(agent.params(new_verifier()), headers=proof)).status_code == 201
    again = await agent.push_raw(agent.params(new_verifier()), headers=proof)
    assert "already used" in assert_error(again, "invalid_dpop_proof")


async def test_a_replayed_proof_is_refused_by_another_process(
    agent: Agent, clock: FrozenClock, settings: Settings, db_path: object
) -> None:
    proof = {"DPoP": dpop_proof(ec_key(), clock.now, htu=PAR_URL)}
    assert (await agent.push_raw(agent.params(new_verifier()), headers=proof)).status_code == 201
    other_store = SQLiteStore(str(db_path))
    try:
        transport = httpx.ASGITransport(app=create_app(settings, other_store, clock=clock))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as second:
            replay = await Agent(second).push_raw(agent.params(new_verifier()), headers=proof)
    finally:
        other_store._conn.close()
        other_store._read_conn.close()
    assert_error(replay, "invalid_dpop_proof")


async def test_a_replay_is_refused_until_the_proof_is_stale(
    agent: Agent, clock: FrozenClock
) -> None:
    proof = {"DPoP": dpop_proof(ec_key(), clock.now, htu=PAR_URL)}
    assert (await agent.push_raw(agent.params(new_verifier()), headers=proof)).status_code == 201
    clock.advance(300)  # iat is now exactly at the edge of the window: still a replay
    again = await agent.push_raw(agent.params(new_verifier()), headers=proof)
    assert "already used" in assert_error(again, "invalid_dpop_proof")
    clock.advance(1)
    stale = await agent.push_raw(agent.params(new_verifier()), headers=proof)
    assert "iat" in assert_error(stale, "invalid_dpop_proof")


async def test_a_future_dated_proof_cannot_be_replayed_at_the_end_of_its_window(
    agent: Agent, clock: FrozenClock
) -> None:
    proof = {"DPoP": dpop_proof(ec_key(), clock.now + 60, htu=PAR_URL)}
    assert (await agent.push_raw(agent.params(new_verifier()), headers=proof)).status_code == 201
    clock.advance(360)
    again = await agent.push_raw(agent.params(new_verifier()), headers=proof)
    assert_error(again, "invalid_dpop_proof")


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
async def test_rsa_proofs_are_accepted(agent: Agent, clock: FrozenClock, alg: str) -> None:
    code, verifier = await agent.code_for()
    proof = {"DPoP": dpop_proof(rsa_key(), clock.now, alg=alg)}
    response = await exchange(agent, code, verifier, proof)
    assert response.status_code == 200, response.text


async def test_an_htu_with_a_bad_port_is_an_invalid_proof(agent: Agent, clock: FrozenClock) -> None:
    code, verifier = await agent.code_for()
    proof = proof_header(ec_key(), clock, "http://127.0.0.1:notaport/token")
    assert_error(await exchange(agent, code, verifier, proof), "invalid_dpop_proof")


async def test_an_overflowing_iat_is_an_invalid_proof(agent: Agent, clock: FrozenClock) -> None:
    code, verifier = await agent.code_for()
    key = ec_key()
    payload = f'{{"htm": "POST", "htu": "{TOKEN_URL}", "jti": "big", "iat": 1e400}}'.encode()
    proof = sign(key, payload, header={"typ": "dpop+jwt", "jwk": public_jwk(key), "kid": None})
    response = await exchange(agent, code, verifier, {"DPoP": proof})
    assert "iat is out of range" in assert_error(response, "invalid_dpop_proof")


# -- server nonces --------------------------------------------------------------------------


@pytest.fixture
async def nonce_http(
    settings: Settings, store: SQLiteStore, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(settings, dpop_nonce_required=True), store, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


@pytest.fixture
async def nonce_agent(nonce_http: httpx.AsyncClient, agent: Agent) -> Agent:
    return Agent(nonce_http)


async def test_a_proof_without_the_nonce_gets_one_and_the_retry_succeeds(
    nonce_agent: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    code, verifier = await nonce_agent.code_for()
    first = await exchange(nonce_agent, code, verifier, proof_header(key, clock))
    assert_error(first, "use_dpop_nonce")
    nonce = first.headers["dpop-nonce"]
    assert nonce == nonce_for(SECRET_KEY, clock.now)
    retry = await exchange(nonce_agent, code, verifier, proof_header(key, clock, nonce=nonce))
    assert retry.status_code == 200, retry.text
    assert retry.json()["token_type"] == "DPoP"
    assert retry.headers["dpop-nonce"] == nonce


async def test_the_nonce_is_required_at_par_too(nonce_agent: Agent, clock: FrozenClock) -> None:
    key = ec_key()
    first = await nonce_agent.push_raw(
        nonce_agent.params(new_verifier()), headers=proof_header(key, clock, PAR_URL)
    )
    assert_error(first, "use_dpop_nonce")
    nonce = first.headers["dpop-nonce"]
    retry = await nonce_agent.push_raw(
        nonce_agent.params(new_verifier()), headers=proof_header(key, clock, PAR_URL, nonce=nonce)
    )
    assert retry.status_code == 201, retry.text


async def test_the_previous_periods_nonce_is_accepted_an_older_one_not(
    nonce_agent: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    previous = nonce_for(SECRET_KEY, clock.now - NONCE_PERIOD)
    older = nonce_for(SECRET_KEY, clock.now - 2 * NONCE_PERIOD)
    code, verifier = await nonce_agent.code_for()
    stale = await exchange(nonce_agent, code, verifier, proof_header(key, clock, nonce=older))
    assert_error(stale, "use_dpop_nonce")
    assert stale.headers["dpop-nonce"] == nonce_for(SECRET_KEY, clock.now)
    forged = await exchange(nonce_agent, code, verifier, proof_header(key, clock, nonce="x" * 32))
    assert_error(forged, "use_dpop_nonce")
    ok = await exchange(nonce_agent, code, verifier, proof_header(key, clock, nonce=previous))
    assert ok.status_code == 200, ok.text


async def test_bearer_clients_need_no_nonce(nonce_agent: Agent) -> None:
    code, verifier = await nonce_agent.code_for()
    response = await exchange(nonce_agent, code, verifier)
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


async def test_the_nonce_retry_may_reuse_the_client_assertion(
    nonce_http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock, user: User
) -> None:
    # RFC 9449 8: the client retries with the nonce. The first attempt must not have spent
    # the single-use client assertion, or the retry would fail on replay.
    signing_key, key = ec_key("k1"), ec_key()
    await add_client(
        store,
        client_id="signer",
        auth_method="private_key_jwt",
        secret=None,
        jwks=jwks_of(signing_key),
    )
    agent = JwtAgent(nonce_http, signing_key, clock, "signer")
    code, verifier = await agent.code_for()
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
        **agent.credentials(),
    }
    first = await nonce_http.post("/token", data=data, headers=proof_header(key, clock))
    assert_error(first, "use_dpop_nonce")
    nonce = first.headers["dpop-nonce"]
    retry = await nonce_http.post(
        "/token", data=data, headers=proof_header(key, clock, nonce=nonce)
    )
    assert retry.status_code == 200, retry.text
    # Spent now: a third use of the same assertion is a replay.
    again = await nonce_http.post(
        "/token", data=data, headers=proof_header(key, clock, nonce=nonce)
    )
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"


async def test_the_nonce_retry_may_reuse_the_request_object(
    nonce_http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock
) -> None:
    signing_key, key = ec_key("jar-1"), ec_key()
    await add_client(store, client_id="jar", jwks=jwks_of(signing_key))
    agent = Agent(nonce_http, "jar")
    token = request_object(signing_key, "jar", agent.params(new_verifier()), clock.now)
    first = await agent.push_raw({"request": token}, headers=proof_header(key, clock, PAR_URL))
    assert_error(first, "use_dpop_nonce")
    nonce = first.headers["dpop-nonce"]
    retry = await agent.push_raw(
        {"request": token}, headers=proof_header(key, clock, PAR_URL, nonce=nonce)
    )
    assert retry.status_code == 201, retry.text
    accepted = (await events(store, "pushed_request.accepted"))[-1]
    assert accepted.data["dpop_jkt"] == jkt(key)

"""The FAPI 2.0 Security Profile switch (profile = "fapi2"): private_key_jwt only, assertion
audience = issuer only, DPoP at the token endpoint, PAR lifetime below 600 s, discovery."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from grantline.app import create_app
from grantline.models import AUTH_METHODS, Client, User
from grantline.protocol.dpop import DPOP_ALGS
from grantline.protocol.jose import CLIENT_SIGNING_ALGS
from grantline.protocol.par import pushed_request_lifetime
from grantline.settings import PAR_LIFETIME_CAP, Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import SECRET_KEY, add_client
from tests.helpers import CLIENT_SECRET, ISSUER, REDIRECT_URI, Agent, FrozenClock, new_verifier
from tests.jose_helpers import (
    AnyKey,
    JwtAgent,
    access_token_claims,
    approve,
    assertion_form,
    client_assertion,
    dpop_proof,
    ec_key,
    events,
    jwks_of,
    public_jwk,
    thumbprint,
)

PAR_URL = f"{ISSUER}/par"
TOKEN_URL = f"{ISSUER}/token"


@pytest.fixture
def fapi_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, profile="fapi2")


@pytest.fixture
async def fapi_http(
    fapi_settings: Settings, store: SQLiteStore, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fapi_settings, store, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


@pytest.fixture
def key() -> AnyKey:
    return ec_key("k1")


@pytest.fixture
async def signer(store: SQLiteStore, key: AnyKey, user: User) -> str:
    await add_client(
        store, client_id="signer", auth_method="private_key_jwt", secret=None, jwks=jwks_of(key)
    )
    return "signer"


@pytest.fixture
def fapi_agent(
    fapi_http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str
) -> JwtAgent:
    return JwtAgent(fapi_http, key, clock, signer)


def dpop(key: AnyKey, clock: FrozenClock, htu: str = TOKEN_URL) -> dict[str, str]:
    return {"DPoP": dpop_proof(key, clock.now, htu=htu)}


def redeem(code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
    }


def test_the_profile_requires_par() -> None:
    with pytest.raises(ValueError, match="requires require_pushed_authorization_requests"):
        Settings(
            issuer=ISSUER,
            database_url="sqlite:///x.db",
            secret_key=SECRET_KEY,
            profile="fapi2",
            require_pushed_authorization_requests=False,
        )
    with pytest.raises(ValueError, match="profile"):
        Settings(
            issuer=ISSUER, database_url="sqlite:///x.db", secret_key=SECRET_KEY, profile="fapi1"
        )


async def test_the_full_fapi2_flow(fapi_agent: JwtAgent, clock: FrozenClock) -> None:
    dpop_key = ec_key()
    verifier = new_verifier()
    pushed = await fapi_agent.push_raw(
        fapi_agent.params(verifier), headers=dpop(dpop_key, clock, PAR_URL)
    )
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["expires_in"] < 600
    code = await approve(fapi_agent, pushed.json()["request_uri"])
    response = await fapi_agent.token(redeem(code, verifier), headers=dpop(dpop_key, clock))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    claims = await access_token_claims(fapi_agent.http, body["access_token"])
    assert claims["cnf"] == {"jkt": thumbprint(public_jwk(dpop_key))}
    # Refreshing needs DPoP too: the profile only issues sender-constrained tokens.
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    bare = await fapi_agent.token(refresh)
    assert bare.status_code == 400
    assert bare.json()["error"] == "invalid_dpop_proof"
    rotated = await fapi_agent.token(refresh, headers=dpop(dpop_key, clock))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["token_type"] == "DPoP"


async def test_a_token_request_without_dpop_is_refused(
    fapi_agent: JwtAgent, clock: FrozenClock
) -> None:
    code, verifier = await fapi_agent.code_for()
    response = await fapi_agent.token(redeem(code, verifier))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"
    assert "DPoP" in response.json()["error_description"]
    # Refused before the grant ran: with a proof the same code still works.
    retry = await fapi_agent.token(redeem(code, verifier), headers=dpop(ec_key(), clock))
    assert retry.status_code == 200, retry.text


@pytest.mark.parametrize(
    ("method", "secret"),
    [("client_secret_basic", True), ("client_secret_post", True), ("none", False)],
)
async def test_other_client_authentication_is_refused_at_par(
    fapi_http: httpx.AsyncClient,
    store: SQLiteStore,
    method: str,
    secret: bool,
) -> None:
    client: Client = await add_client(
        store,
        client_id="legacy",
        auth_method=method,  # type: ignore[arg-type]
        secret=CLIENT_SECRET if secret else None,
    )
    agent = Agent(fapi_http, client.client_id)
    params = agent.params(new_verifier())
    if method == "client_secret_basic":
        response = await agent.push_raw(params)
    elif method == "client_secret_post":
        data = {**params, "client_id": "legacy", "client_secret": agent.secret}
        response = await fapi_http.post("/par", data=data)
    else:
        response = await fapi_http.post("/par", data={**params, "client_id": "legacy"})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    failed = (await events(store, "client.authentication_failed"))[-1]
    assert failed.client_id == "legacy"
    assert failed.data["reason"] == "fapi2: method not allowed"
    assert await events(store, "pushed_request.accepted") == []


async def test_the_same_secret_client_is_fine_without_the_profile(
    http: httpx.AsyncClient, store: SQLiteStore
) -> None:
    await add_client(store, client_id="legacy")
    response = await Agent(http, "legacy").push_raw(Agent(http).params(new_verifier()))
    assert response.status_code == 201


@pytest.mark.parametrize("aud", [TOKEN_URL, PAR_URL])
async def test_endpoint_audiences_are_refused_under_fapi2_at_par(
    fapi_http: httpx.AsyncClient,
    http: httpx.AsyncClient,
    key: AnyKey,
    clock: FrozenClock,
    signer: str,
    store: SQLiteStore,
    aud: str,
) -> None:
    params = Agent(fapi_http).params(new_verifier())
    assertion = client_assertion(key, signer, clock.now, aud=aud)
    refused = await fapi_http.post("/par", data={**params, **assertion_form(assertion, signer)})
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert "aud" in (await events(store, "client.authentication_failed"))[-1].data["reason"]
    # The very same kind of assertion is fine without the profile (RFC 9126 2).
    fresh = client_assertion(key, signer, clock.now, aud=aud)
    accepted = await http.post("/par", data={**params, **assertion_form(fresh, signer)})
    assert accepted.status_code == 201, accepted.text


async def test_token_endpoint_audience_is_refused_under_fapi2_at_token(
    fapi_agent: JwtAgent, http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock
) -> None:
    code, verifier = await fapi_agent.code_for()
    fapi_agent.aud = TOKEN_URL
    refused = await fapi_agent.token(redeem(code, verifier), headers=dpop(ec_key(), clock))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    # The issuer itself still works, as a string or inside an array.
    fapi_agent.aud = ISSUER
    ok = await fapi_agent.token(redeem(code, verifier), headers=dpop(ec_key(), clock))
    assert ok.status_code == 200, ok.text
    # Without the profile the token endpoint URL is an accepted audience.
    plain = JwtAgent(http, key, clock, "signer", aud=TOKEN_URL)
    code, verifier = await plain.code_for()
    assert (await plain.exchange(code, verifier)).status_code == 200


async def test_the_issuer_in_an_audience_array_is_accepted_under_fapi2(
    fapi_http: httpx.AsyncClient, key: AnyKey, clock: FrozenClock, signer: str
) -> None:
    params = Agent(fapi_http).params(new_verifier())
    assertion = client_assertion(key, signer, clock.now, aud=[ISSUER])
    response = await fapi_http.post("/par", data={**params, **assertion_form(assertion, signer)})
    assert response.status_code == 201, response.text


async def test_par_lifetime_stays_below_600_even_when_asked_for_600(
    fapi_http: httpx.AsyncClient, http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock
) -> None:
    key = ec_key("slow")
    await add_client(
        store,
        client_id="slow",
        auth_method="private_key_jwt",
        secret=None,
        jwks=jwks_of(key),
        par_lifetime=600,
    )
    for client_http, expected in ((fapi_http, 599), (http, 600)):
        agent = JwtAgent(client_http, key, clock, "slow")
        response = await agent.push_raw(agent.params(new_verifier()))
        assert response.status_code == 201, response.text
        assert response.json()["expires_in"] == expected
    accepted = await events(store, "pushed_request.accepted")
    assert [e.data["lifetime"] for e in accepted] == [599, 600]


async def test_a_server_default_of_600_is_capped_too(
    fapi_settings: Settings, store: SQLiteStore, clock: FrozenClock, signer: str, key: AnyKey
) -> None:
    settings = dataclasses.replace(fapi_settings, par_lifetime=PAR_LIFETIME_CAP)
    transport = httpx.ASGITransport(app=create_app(settings, store, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        agent = JwtAgent(http, key, clock, signer)
        response = await agent.push_raw(agent.params(new_verifier()))
    assert response.status_code == 201, response.text
    assert response.json()["expires_in"] == 599


def test_pushed_request_lifetime_rule() -> None:
    client = Client("c", "C", "private_key_jwt", (REDIRECT_URI,), par_lifetime=600)
    assert pushed_request_lifetime(60, client, fapi2=True) == 599
    assert pushed_request_lifetime(60, client, fapi2=False) == 600
    short = dataclasses.replace(client, par_lifetime=30)
    assert pushed_request_lifetime(60, short, fapi2=True) == 30
    default = dataclasses.replace(client, par_lifetime=None)
    assert pushed_request_lifetime(600, default, fapi2=True) == 599


async def test_discovery_lists_only_private_key_jwt(fapi_http: httpx.AsyncClient) -> None:
    doc = (await fapi_http.get("/.well-known/oauth-authorization-server")).json()
    for field in (
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ):
        assert doc[field] == ["private_key_jwt"], field
    assert doc["require_pushed_authorization_requests"] is True
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == list(CLIENT_SIGNING_ALGS)
    assert doc["dpop_signing_alg_values_supported"] == list(DPOP_ALGS)
    assert doc["code_challenge_methods_supported"] == ["S256"]


async def test_discovery_without_the_profile(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert doc["token_endpoint_auth_methods_supported"] == list(AUTH_METHODS)
    # Request objects are accepted (at the PAR endpoint).
    assert doc["request_parameter_supported"] is True
    assert "private_key_jwt" in doc["introspection_endpoint_auth_methods_supported"]
    assert doc["request_object_signing_alg_values_supported"] == [
        "ES256",
        "EdDSA",
        "Ed25519",
        "PS256",
    ]
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == [
        "ES256",
        "EdDSA",
        "Ed25519",
        "PS256",
    ]
    dpop_algs = doc["dpop_signing_alg_values_supported"]
    assert {"ES256", "EdDSA", "Ed25519", "PS256"} <= set(dpop_algs)
    assert not [alg for alg in dpop_algs if alg == "none" or alg.startswith("HS")]

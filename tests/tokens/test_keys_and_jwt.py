"""Signing keys and RFC 9068 JWT access tokens: creation, rotation, publication, verification."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet

from grantline.errors import ServerError
from grantline.models import Client, User
from grantline.settings import SIGNING_ALGS, Settings
from grantline.storage.sql import SQLiteStore
from grantline.tokens.jwt import ACCESS_TOKEN_TYP, sign_access_token
from grantline.tokens.keys import (
    create_signing_key,
    parsed_key,
    public_jwks,
    rotate_signing_key,
    unseal,
)
from tests.conftest import SECRET_KEY, build_app
from tests.helpers import ISSUER, Agent, FrozenClock

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


async def keys_in(store: SQLiteStore, now: int | None = None) -> list[Any]:
    async with store.reader() as tx:
        return await tx.list_signing_keys(now)


async def initial_kid(store: SQLiteStore) -> str:
    (key,) = await keys_in(store)
    return str(key.kid)


def decode(token: str, jwks: Any, alg: str = "ES256") -> jwt.Token:
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[alg])


async def published(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/jwks")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def access_token(agent: Agent) -> str:
    code, verifier = await agent.code_for()
    response = await agent.exchange(code, verifier)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
async def served(settings: Settings, store: SQLiteStore, clock: FrozenClock) -> AsyncIterator[Any]:
    """Build a server with other settings, on the same database, for the test's lifetime."""
    opened: list[httpx.AsyncClient] = []

    def serve(changed: Settings, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(
            app=build_app(changed, store, clock), raise_app_exceptions=raise_app_exceptions
        )
        http = httpx.AsyncClient(transport=transport, base_url=ISSUER)
        opened.append(http)
        return http

    yield serve
    for http in opened:
        await http.aclose()


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNING_ALGS)
async def test_keys_of_each_alg_have_thumbprint_kids_and_public_jwks(
    store: SQLiteStore, clock: FrozenClock, alg: str
) -> None:
    async with store.transaction() as tx:
        kid = await create_signing_key(tx, clock.now, alg, secret=SECRET_KEY)
    newest = (await keys_in(store))[0]
    assert newest.kid == kid and newest.alg == alg and newest.active
    assert parsed_key(newest, SECRET_KEY).thumbprint() == kid
    # Sealed at rest: no private member is readable from the database row.
    assert newest.private_jwk.startswith("sealed.v1.")
    assert '"d"' not in newest.private_jwk
    stored = json.loads(unseal(SECRET_KEY, kid, newest.private_jwk))
    assert stored["alg"] == alg and stored["use"] == "sig" and "d" in stored
    async with store.reader() as tx:
        jwks = await public_jwks(tx, clock.now, secret=SECRET_KEY)
    (public,) = [k for k in jwks["keys"] if k["kid"] == kid]
    assert public["alg"] == alg and public["use"] == "sig"
    assert not set(PRIVATE_MEMBERS) & set(public)


async def test_an_unsupported_alg_creates_nothing(store: SQLiteStore, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="unsupported signing algorithm 'HS256'"):
        async with store.transaction() as tx:
            await create_signing_key(tx, clock.now, "HS256", secret=SECRET_KEY)
    assert len(await keys_in(store)) == 1


@pytest.mark.parametrize("alg", SIGNING_ALGS)
async def test_signed_tokens_verify_against_the_published_keys(
    store: SQLiteStore, clock: FrozenClock, alg: str
) -> None:
    async with store.transaction() as tx:
        kid = await create_signing_key(tx, clock.now, alg, secret=SECRET_KEY)
        token = await sign_access_token(tx, alg, {"sub": "alice"}, clock.now, secret=SECRET_KEY)
        jwks = await public_jwks(tx, clock.now, secret=SECRET_KEY)
    decoded = decode(token, jwks, alg)
    assert decoded.header == {"typ": ACCESS_TOKEN_TYP, "alg": alg, "kid": kid}
    assert decoded.claims == {"sub": "alice"}


async def test_a_token_cannot_be_verified_with_another_alg(
    store: SQLiteStore, clock: FrozenClock
) -> None:
    async with store.transaction() as tx:
        token = await sign_access_token(tx, "ES256", {"sub": "alice"}, clock.now, secret=SECRET_KEY)
        jwks = await public_jwks(tx, clock.now, secret=SECRET_KEY)
    with pytest.raises(UnsupportedAlgorithmError):
        decode(token, jwks, "RS256")


async def test_signing_without_an_active_key_of_the_alg_is_a_server_error(
    store: SQLiteStore, clock: FrozenClock
) -> None:
    with pytest.raises(ServerError) as caught:
        async with store.reader() as tx:
            await sign_access_token(tx, "Ed25519", {"sub": "alice"}, clock.now, secret=SECRET_KEY)
    assert caught.value.description == "The server encountered an unexpected condition."
    assert "grantline keys rotate --alg Ed25519" in caught.value.detail


async def test_rotation_publishes_old_keys_only_while_their_tokens_live(
    store: SQLiteStore, clock: FrozenClock
) -> None:
    old = await initial_kid(store)
    async with store.transaction() as tx:
        old_token = await sign_access_token(tx, "ES256", {"n": 1}, clock.now, secret=SECRET_KEY)
        new = await rotate_signing_key(tx, clock.now, "ES256", verify_for=600, secret=SECRET_KEY)
        new_token = await sign_access_token(tx, "ES256", {"n": 2}, clock.now, secret=SECRET_KEY)
    assert new != old
    keys = {k.kid: k for k in await keys_in(store)}
    assert keys[new].active and not keys[old].active
    assert keys[old].retired_at == clock.now + 600
    assert decode(new_token, await _jwks(store, clock.now)).header["kid"] == new
    clock.advance(599)
    assert decode(old_token, await _jwks(store, clock.now)).claims == {"n": 1}
    clock.advance(1)
    assert [k["kid"] for k in (await _jwks(store, clock.now))["keys"]] == [new]
    with pytest.raises(InvalidKeyIdError):
        decode(old_token, await _jwks(store, clock.now))
    # The database still has it (``keys list --all``); it is only no longer published.
    assert {k.kid for k in await keys_in(store)} == {old, new}


async def test_a_second_rotation_does_not_extend_an_older_keys_publication(
    store: SQLiteStore, clock: FrozenClock
) -> None:
    first = await initial_kid(store)
    async with store.transaction() as tx:
        await rotate_signing_key(tx, clock.now, "ES256", verify_for=600, secret=SECRET_KEY)
    clock.advance(300)
    async with store.transaction() as tx:
        await rotate_signing_key(tx, clock.now, "ES256", verify_for=600, secret=SECRET_KEY)
    keys = {k.kid: k for k in await keys_in(store)}
    assert keys[first].retired_at == clock.now - 300 + 600


async def _jwks(store: SQLiteStore, now: int) -> dict[str, Any]:
    async with store.reader() as tx:
        return await public_jwks(tx, now, secret=SECRET_KEY)


# -- over HTTP -------------------------------------------------------------------------------


async def test_tokens_after_a_rotation_use_the_new_key_and_old_tokens_still_verify(
    agent: Agent, store: SQLiteStore, clock: FrozenClock, settings: Settings
) -> None:
    old = await initial_kid(store)
    before = await access_token(agent)
    async with store.transaction() as tx:
        new = await rotate_signing_key(
            tx, clock.now, "ES256", verify_for=settings.access_token_lifetime, secret=SECRET_KEY
        )
    jwks = await published(agent.http)
    assert {k["kid"] for k in jwks["keys"]} == {old, new}
    after = await access_token(agent)
    assert decode(after, jwks).header["kid"] == new
    assert decode(before, jwks).header["kid"] == old
    clock.advance(settings.access_token_lifetime - 1)
    assert decode(before, await published(agent.http)).claims["iss"] == ISSUER
    clock.advance(1)
    jwks = await published(agent.http)
    assert [k["kid"] for k in jwks["keys"]] == [new]
    with pytest.raises(InvalidKeyIdError):
        decode(before, jwks)


@pytest.mark.parametrize("alg", ["Ed25519", "RS256"])
async def test_other_configured_algs_sign_verifiable_access_tokens(
    served: Any,
    settings: Settings,
    store: SQLiteStore,
    clock: FrozenClock,
    client: Client,
    user: User,
    alg: str,
) -> None:
    async with store.transaction() as tx:
        kid = await create_signing_key(tx, clock.now, alg, secret=SECRET_KEY)
    http = served(dataclasses.replace(settings, access_token_signing_alg=alg))
    token = await access_token(Agent(http))
    decoded = decode(token, await published(http), alg)
    assert decoded.header == {"typ": "at+jwt", "alg": alg, "kid": kid}
    assert decoded.claims["client_id"] == "agent"
    assert decoded.claims["sub"] == user.user_id


async def test_no_key_for_the_configured_alg_is_a_fixed_server_error_and_burns_nothing(
    served: Any,
    settings: Settings,
    store: SQLiteStore,
    clock: FrozenClock,
    client: Client,
    user: User,
) -> None:
    http = served(
        dataclasses.replace(settings, access_token_signing_alg="Ed25519"),
        raise_app_exceptions=False,
    )
    agent = Agent(http)
    code, verifier = await agent.code_for()
    response = await agent.exchange(code, verifier)
    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "error_description": "The server encountered an unexpected condition.",
    }
    assert response.headers["cache-control"] == "no-store"
    # The failed mint rolled back: once an operator adds the key, the same code works.
    async with store.transaction() as tx:
        await create_signing_key(tx, clock.now, "Ed25519", secret=SECRET_KEY)
    retried = await agent.exchange(code, verifier)
    assert retried.status_code == 200, retried.text


async def test_rotating_to_another_alg_does_not_stop_token_issuance(
    agent: Agent, store: SQLiteStore, clock: FrozenClock, settings: Settings
) -> None:
    async with store.transaction() as tx:
        await rotate_signing_key(
            tx,
            clock.now,
            "Ed25519",
            verify_for=settings.access_token_lifetime,
            secret=SECRET_KEY,
        )
    code, verifier = await agent.code_for()
    assert (await agent.exchange(code, verifier)).status_code == 200


async def test_a_sealed_key_needs_the_instance_secret(
    store: SQLiteStore, clock: FrozenClock
) -> None:
    from cryptography.exceptions import InvalidTag

    async with store.transaction() as tx:
        kid = await create_signing_key(tx, clock.now, "ES256", secret=SECRET_KEY)
    newest = (await keys_in(store))[0]
    with pytest.raises(InvalidTag):
        unseal(b"x" * 32, kid, newest.private_jwk)
    # The kid is bound as associated data: a row moved under another kid does not open.
    with pytest.raises(InvalidTag):
        unseal(SECRET_KEY, "another-kid", newest.private_jwk)

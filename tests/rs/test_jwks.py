"""The issuer's keys: fetched from its JWKS, refetched for a new kid at most once per
interval, kept through an outage, and never anything but asymmetric public keys."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from grantline.rs.errors import ResourceError
from grantline.rs.verify import TokenVerifier
from grantline.storage.sql import SQLiteStore
from grantline.tokens.keys import rotate_signing_key
from tests.conftest import SECRET_KEY
from tests.helpers import ISSUER, FrozenClock
from tests.jose_helpers import b64url, ec_key, public_jwk, sign
from tests.rs.conftest import (
    RESOURCE,
    Monotonic,
    RecordingTransport,
    claims_for,
    mint,
    verify,
)


async def refused(verifier: TokenVerifier, token: str) -> ResourceError:
    with pytest.raises(ResourceError) as caught:
        await verify(verifier, token)
    return caught.value


def assert_invalid_token(error: ResourceError) -> None:
    assert (error.error, error.status_code) == ("invalid_token", 401)


async def test_an_unknown_kid_refetches_the_keys_once_per_interval(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
    monotonic: Monotonic,
) -> None:
    await verify(verifier, await mint(store, clock.now))
    assert as_transport.count("/jwks") == 1
    monotonic.advance(11)
    bogus = sign(ec_key(), claims_for(clock.now), header={"typ": "at+jwt", "kid": "made-up-1"})
    error = await refused(verifier, bogus)
    assert_invalid_token(error)
    assert error.description == "The issuer has no ES256 key with kid 'made-up-1'."
    assert as_transport.count("/jwks") == 2
    # A flood of made-up kids right after costs the authorization server nothing.
    for n in range(20):
        other = sign(ec_key(), claims_for(clock.now), header={"typ": "at+jwt", "kid": f"k{n}"})
        assert_invalid_token(await refused(verifier, other))
    assert as_transport.count("/jwks") == 2
    # Known keys keep working meanwhile, from the cache.
    await verify(verifier, await mint(store, clock.now))
    assert as_transport.count("/jwks") == 2


async def test_a_rotated_key_is_picked_up_on_its_first_token(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
    monotonic: Monotonic,
) -> None:
    await verify(verifier, await mint(store, clock.now))
    monotonic.advance(11)
    async with store.transaction() as tx:
        await rotate_signing_key(tx, clock.now, "ES256", 600, secret=SECRET_KEY)
    verified = await verify(verifier, await mint(store, clock.now))
    assert verified.client_id == "agent"
    assert as_transport.count("/jwks") == 2


async def test_unreachable_keys_are_503_not_a_bad_token(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
) -> None:
    as_transport.down = True
    error = await refused(verifier, await mint(store, clock.now))
    assert (error.error, error.status_code) == ("temporarily_unavailable", 503)
    assert error.headers["Retry-After"] == "5"
    assert verifier.challenge(error) is None


async def test_known_keys_outlive_an_outage(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
    monotonic: Monotonic,
) -> None:
    await verify(verifier, await mint(store, clock.now))
    as_transport.down = True
    monotonic.advance(3600)
    assert (await verify(verifier, await mint(store, clock.now))).client_id == "agent"


# -- a JWKS the issuer should never publish ---------------------------------------------------


def serving(jwks: dict[str, Any]) -> httpx.AsyncClient:
    """An issuer whose metadata is right and whose JWKS is ``jwks``."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jwks":
            return httpx.Response(200, json=jwks)
        return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_a_symmetric_key_in_the_jwks_is_never_used(clock: FrozenClock) -> None:
    secret = b"shared-secret-shared-secret-1234"
    oct_key = {"kty": "oct", "kid": "k1", "k": b64url(secret), "alg": "HS256"}
    async with serving({"keys": [oct_key]}) as http:
        verifier = TokenVerifier(issuer=ISSUER, resource=RESOURCE, http=http, clock=clock)
        token = sign(ec_key("k1"), claims_for(clock.now), header={"typ": "at+jwt"})
        assert_invalid_token(await refused(verifier, token))


async def test_a_key_published_for_another_alg_does_not_verify_this_one(
    clock: FrozenClock,
) -> None:
    key = ec_key("k1")
    jwk = {**public_jwk(key), "alg": "ES384"}
    async with serving({"keys": [jwk]}) as http:
        verifier = TokenVerifier(issuer=ISSUER, resource=RESOURCE, http=http, clock=clock)
        token = sign(key, claims_for(clock.now), header={"typ": "at+jwt"})
        error = await refused(verifier, token)
    assert_invalid_token(error)
    assert error.description == "The issuer has no ES256 key with kid 'k1'."


async def test_an_encryption_key_does_not_verify(clock: FrozenClock) -> None:
    key = ec_key("k1")
    async with serving({"keys": [{**public_jwk(key), "use": "enc"}]}) as http:
        verifier = TokenVerifier(issuer=ISSUER, resource=RESOURCE, http=http, clock=clock)
        token = sign(key, claims_for(clock.now), header={"typ": "at+jwt"})
        assert_invalid_token(await refused(verifier, token))


async def test_without_a_kid_only_a_single_key_is_tried(clock: FrozenClock) -> None:
    one, two = ec_key(), ec_key()
    token = sign(one, claims_for(clock.now), header={"typ": "at+jwt"})
    async with serving({"keys": [public_jwk(one)]}) as http:
        verifier = TokenVerifier(issuer=ISSUER, resource=RESOURCE, http=http, clock=clock)
        assert (await verify(verifier, token)).client_id == "agent"
    async with serving({"keys": [public_jwk(one), public_jwk(two)]}) as http:
        verifier = TokenVerifier(issuer=ISSUER, resource=RESOURCE, http=http, clock=clock)
        assert_invalid_token(await refused(verifier, token))


async def test_a_jwks_that_is_not_a_jwk_set_is_503(clock: FrozenClock) -> None:
    async with serving(json.loads('{"keys": "none"}')) as http:
        verifier = TokenVerifier(issuer=ISSUER, resource=RESOURCE, http=http, clock=clock)
        token = sign(ec_key("k1"), claims_for(clock.now), header={"typ": "at+jwt"})
        error = await refused(verifier, token)
    assert (error.error, error.status_code) == ("temporarily_unavailable", 503)

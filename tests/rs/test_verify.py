"""``TokenVerifier`` refuses every bad token and proof, each sent as an attacker would, with
the exact RFC 6750 / RFC 9449 error and status."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from grantline.rs.errors import ResourceError
from grantline.rs.verify import TokenVerifier
from grantline.storage.sql import SQLiteStore
from grantline.tokens.keys import create_signing_key, parsed_key
from tests.conftest import SECRET_KEY
from tests.helpers import ISSUER, FrozenClock
from tests.jose_helpers import (
    b64url,
    dpop_proof,
    ec_key,
    ed_key,
    hs256_token,
    public_jwk,
    sign,
    thumbprint,
    unsigned_token,
)
from tests.rs.conftest import (
    API_URL,
    PAYMENT_ITEM,
    RESOURCE,
    RecordingTransport,
    claims_for,
    mint,
    mint_bound,
    proof_for,
    verify,
)


async def refused(verifier: TokenVerifier, token: str | None, **kwargs: Any) -> ResourceError:
    with pytest.raises(ResourceError) as caught:
        await verify(verifier, token, **kwargs)
    return caught.value


def assert_invalid_token(verifier: TokenVerifier, error: ResourceError, scheme: str) -> None:
    assert (error.error, error.status_code) == ("invalid_token", 401)
    challenge = verifier.challenge(error)
    assert challenge is not None
    assert challenge.startswith(f'{scheme} error="invalid_token", error_description="')


def assert_invalid_proof(verifier: TokenVerifier, error: ResourceError) -> None:
    assert (error.error, error.status_code) == ("invalid_dpop_proof", 401)
    challenge = verifier.challenge(error)
    assert challenge is not None
    assert challenge.startswith('DPoP error="invalid_dpop_proof"')
    assert 'algs="ES256' in challenge


async def server_kid(store: SQLiteStore, clock: FrozenClock) -> str:
    async with store.reader() as tx:
        return [k.kid for k in await tx.list_signing_keys(clock.now) if k.active][0]


# -- what passes ----------------------------------------------------------------------------


async def test_a_bearer_token_minted_by_grantline_is_verified(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await mint(store, clock.now, jti="jti-1", aud=[RESOURCE, "https://other.example"])
    verified = await verify(verifier, token)
    assert verified.jti == "jti-1"
    assert verified.sub == "user-1"
    assert verified.client_id == "agent"
    assert verified.scopes == ("invoices.pay",)
    assert verified.audience == (RESOURCE, "https://other.example")
    assert verified.authorization_details == (PAYMENT_ITEM,)
    assert verified.jkt is None
    assert verified.scheme == "Bearer"
    assert verified.expires_at == clock.now + 600


async def test_a_dpop_bound_token_with_its_proof_is_verified(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key = ec_key()
    token = await mint_bound(store, clock.now, key)
    proof = proof_for(key, clock.now, token)
    verified = await verify(verifier, token, scheme="DPoP", proof=proof)
    assert verified.jkt == thumbprint(public_jwk(key))
    assert verified.scheme == "DPoP"


async def test_the_scheme_name_is_case_insensitive(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await mint(store, clock.now)
    assert (await verify(verifier, token, scheme="bearer")).client_id == "agent"


async def test_an_ed25519_token_is_verified(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    async with store.transaction() as tx:
        await create_signing_key(tx, clock.now, "Ed25519", secret=SECRET_KEY)
    token = await mint(store, clock.now, alg="Ed25519")
    assert (await verify(verifier, token)).client_id == "agent"


async def test_the_verified_token_keeps_its_own_copy_of_the_claims(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    verified = await verify(verifier, await mint(store, clock.now))
    verified.authorization_details[0]["instructedAmount"]["amount"] = "99999.00"
    assert verified.claims["authorization_details"][0]["instructedAmount"]["amount"] == "123.50"
    # Plain JSON values: an application may return or log them as they are.
    assert json.loads(json.dumps(verified.claims)) == verified.claims


# -- the token ------------------------------------------------------------------------------


async def test_an_expired_token_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await mint(store, clock.now - 1000, exp=clock.now - 31)
    error = await refused(verifier, token)
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description == "The access token has expired."


async def test_expiry_has_a_small_leeway_only(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await mint(store, clock.now - 1000, exp=clock.now - 29)
    assert (await verify(verifier, token)).client_id == "agent"


async def test_a_token_for_another_resource_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await mint(store, clock.now, aud=["https://api.example/payments2", ISSUER])
    error = await refused(verifier, token)
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description == "The access token is not meant for this resource."


async def test_a_token_from_another_issuer_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    token = await mint(store, clock.now, iss="https://evil.example")
    error = await refused(verifier, token)
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description == "The access token was issued by another issuer."


async def test_a_token_signed_with_another_key_under_the_servers_kid_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    kid = await server_kid(store, clock)
    forged = sign(ec_key(), claims_for(clock.now), header={"typ": "at+jwt", "kid": kid})
    error = await refused(verifier, forged)
    assert_invalid_token(verifier, error, "Bearer")
    assert "signature does not verify" in error.description


async def test_a_token_whose_claims_were_changed_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    header, _, signature = (await mint(store, clock.now)).split(".")
    richer = {**PAYMENT_ITEM, "instructedAmount": {"currency": "EUR", "amount": "99999.00"}}
    payload = json.dumps(claims_for(clock.now, authorization_details=[richer])).encode()
    error = await refused(verifier, f"{header}.{b64url(payload)}.{signature}")
    assert_invalid_token(verifier, error, "Bearer")


async def test_alg_none_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    kid = await server_kid(store, clock)
    token = unsigned_token(claims_for(clock.now), {"typ": "at+jwt", "kid": kid})
    error = await refused(verifier, token)
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description == "The access token's alg 'none' is not accepted."


async def test_hmac_keyed_with_the_public_key_is_refused(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_http: httpx.AsyncClient,
) -> None:
    jwks = (await as_http.get(f"{ISSUER}/jwks")).json()
    kid = jwks["keys"][0]["kid"]
    token = hs256_token(
        json.dumps(jwks["keys"][0]).encode(), claims_for(clock.now), {"typ": "at+jwt", "kid": kid}
    )
    error = await refused(verifier, token)
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description == "The access token's alg 'HS256' is not accepted."


async def test_hmac_or_none_cannot_even_be_configured(as_http: httpx.AsyncClient) -> None:
    for alg in ("HS256", "none"):
        with pytest.raises(ValueError, match="not an asymmetric"):
            TokenVerifier(issuer=ISSUER, resource=RESOURCE, algorithms=[alg], http=as_http)


@pytest.mark.parametrize("typ", [None, "JWT", "dpop+jwt", "at+jwt+evil"])
async def test_a_token_without_typ_at_jwt_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock, typ: str | None
) -> None:
    async with store.reader() as tx:
        key = [k for k in await tx.list_signing_keys(clock.now) if k.active][0]
    token = sign(
        parsed_key(key, SECRET_KEY),
        claims_for(clock.now),
        alg="ES256",
        header={"typ": typ, "kid": key.kid},
    )
    error = await refused(verifier, token)
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description == "The access token's typ is not at+jwt (RFC 9068)."


async def test_the_media_type_form_of_typ_is_accepted(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    async with store.reader() as tx:
        key = [k for k in await tx.list_signing_keys(clock.now) if k.active][0]
    token = sign(
        parsed_key(key, SECRET_KEY),
        claims_for(clock.now),
        header={"typ": "application/at+jwt", "kid": key.kid},
    )
    assert (await verify(verifier, token)).client_id == "agent"


@pytest.mark.parametrize(
    ("claim", "value", "description"),
    [
        ("nbf", 10_000, "The access token is not valid yet."),
        ("iat", 10_000, "The access token was issued in the future."),
        ("iat", None, "The access token has no iat."),
        ("exp", None, "The access token has no exp."),
        ("exp", "tomorrow", "The access token's exp is not a number."),
        ("jti", None, "The access token has no jti."),
        ("sub", 7, "The access token has no sub."),
        ("client_id", None, "The access token has no client_id."),
        ("aud", None, "The access token has no valid aud."),
        ("scope", ["a"], "The access token's scope is malformed."),
        ("authorization_details", [{"no": "type"}], "authorization_details are malformed."),
        ("cnf", {"x5t#S256": "abc"}, "cnf names a binding this resource cannot check."),
    ],
)
async def test_malformed_or_missing_claims_are_refused(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    claim: str,
    value: Any,
    description: str,
) -> None:
    if claim in ("nbf", "iat") and value is not None:
        value = clock.now + value
    token = await mint(store, clock.now, **{claim: value})
    error = await refused(verifier, token)
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description.endswith(description)


async def test_something_that_is_not_a_jwt_is_refused(verifier: TokenVerifier) -> None:
    error = await refused(verifier, "opaque-token-value")
    assert_invalid_token(verifier, error, "Bearer")
    assert error.description == "The access token is not a JWT."


# -- how the token is presented ---------------------------------------------------------------


async def test_no_token_is_a_challenge_without_an_error_code(verifier: TokenVerifier) -> None:
    error = await refused(verifier, None)
    assert (error.error, error.status_code) == ("invalid_token", 401)
    assert verifier.challenge(error) == 'Bearer, DPoP algs="ES256 EdDSA Ed25519 PS256 ES384 RS256"'


async def test_another_scheme_counts_as_no_token(verifier: TokenVerifier) -> None:
    with pytest.raises(ResourceError) as caught:
        await verifier.verify(
            authorization=["Basic YWdlbnQ6c2VjcmV0"], dpop=[], method="GET", url=API_URL
        )
    assert (caught.value.error, caught.value.status_code) == ("invalid_token", 401)
    assert "error=" not in (verifier.challenge(caught.value) or "")


@pytest.mark.parametrize(
    ("authorization", "dpop"),
    [
        (["Bearer a.b.c", "Bearer d.e.f"], []),
        (["Bearer"], []),
        (["Bearer "], []),
        (["Bearer a.b.c extra"], []),
        (['Bearer a"b'], []),
        (["Bearer a.b.c"], ["p1", "p2"]),
        (["DPoP a.b.c"], ["p1", "p2"]),
    ],
)
async def test_malformed_headers_are_invalid_request(
    verifier: TokenVerifier, authorization: list[str], dpop: list[str]
) -> None:
    with pytest.raises(ResourceError) as caught:
        await verifier.verify(authorization=authorization, dpop=dpop, method="GET", url=API_URL)
    assert (caught.value.error, caught.value.status_code) == ("invalid_request", 400)
    assert 'error="invalid_request"' in (verifier.challenge(caught.value) or "")


async def test_a_dpop_bound_token_presented_as_bearer_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key = ec_key()
    token = await mint_bound(store, clock.now, key)
    # Even with a valid proof beside it: the scheme says bearer, and bearer it is not.
    error = await refused(verifier, token, proof=proof_for(key, clock.now, token))
    assert_invalid_token(verifier, error, "DPoP")
    assert "DPoP-bound" in error.description


async def test_a_bearer_token_presented_with_the_dpop_scheme_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key = ec_key()
    token = await mint(store, clock.now)
    error = await refused(verifier, token, scheme="DPoP", proof=proof_for(key, clock.now, token))
    assert_invalid_token(verifier, error, "DPoP")
    assert error.description == "The access token is not DPoP-bound; use Bearer."


async def test_a_resource_requiring_dpop_refuses_bearer_tokens(
    as_http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock
) -> None:
    verifier = TokenVerifier(
        issuer=ISSUER, resource=RESOURCE, require_dpop=True, http=as_http, clock=clock
    )
    error = await refused(verifier, await mint(store, clock.now))
    assert_invalid_token(verifier, error, "DPoP")
    assert "Bearer" not in (verifier.challenge(error) or "")


# -- the DPoP proof ---------------------------------------------------------------------------


async def bound(store: SQLiteStore, clock: FrozenClock) -> tuple[Any, str]:
    key = ec_key()
    return key, await mint_bound(store, clock.now, key)


async def test_the_dpop_scheme_without_a_proof_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    _, token = await bound(store, clock)
    error = await refused(verifier, token, scheme="DPoP")
    assert_invalid_proof(verifier, error)
    assert error.description == "The DPoP scheme needs a DPoP proof header."


async def test_a_proof_with_the_wrong_ath_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key, token = await bound(store, clock)
    other = await mint_bound(store, clock.now, key)
    error = await refused(verifier, token, scheme="DPoP", proof=proof_for(key, clock.now, other))
    assert_invalid_proof(verifier, error)
    assert error.description == "DPoP proof: ath does not match the access token."


async def test_a_proof_without_ath_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key, token = await bound(store, clock)
    error = await refused(
        verifier, token, scheme="DPoP", proof=proof_for(key, clock.now, token, ath=None)
    )
    assert_invalid_proof(verifier, error)


async def test_a_proof_for_another_url_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key, token = await bound(store, clock)
    proof = proof_for(key, clock.now, token, htu="https://api.example/payments/124")
    error = await refused(verifier, token, scheme="DPoP", proof=proof)
    assert_invalid_proof(verifier, error)
    assert error.description == "DPoP proof: htu does not match the request URL."


async def test_a_proof_for_another_method_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key, token = await bound(store, clock)
    proof = proof_for(key, clock.now, token, htm="POST")
    error = await refused(verifier, token, scheme="DPoP", proof=proof, method="DELETE")
    assert_invalid_proof(verifier, error)
    assert error.description == "DPoP proof: htm does not match the request method."


async def test_a_replayed_proof_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key, token = await bound(store, clock)
    proof = proof_for(key, clock.now, token)
    await verify(verifier, token, scheme="DPoP", proof=proof)
    error = await refused(verifier, token, scheme="DPoP", proof=proof)
    assert_invalid_proof(verifier, error)
    assert error.description == "The DPoP proof was already used."
    # A fresh proof from the holder still works.
    await verify(verifier, token, scheme="DPoP", proof=proof_for(key, clock.now, token))


async def test_a_proof_refused_for_another_reason_is_not_spent(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key, token = await bound(store, clock)
    proof = proof_for(key, clock.now, token)
    error = await refused(verifier, token, scheme="DPoP", proof=proof, url=API_URL + "/x")
    assert_invalid_proof(verifier, error)
    await verify(verifier, token, scheme="DPoP", proof=proof)


async def test_a_proof_by_another_key_than_the_tokens_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    _, token = await bound(store, clock)
    thief = ed_key()
    error = await refused(verifier, token, scheme="DPoP", proof=proof_for(thief, clock.now, token))
    assert_invalid_proof(verifier, error)
    assert error.description == "The DPoP proof was made with another key than the token's."


async def test_a_proof_carrying_the_holders_public_key_but_signed_by_another_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    key, token = await bound(store, clock)
    proof = dpop_proof(ec_key(), clock.now, htm="GET", htu=API_URL, jwk=public_jwk(key))
    error = await refused(verifier, token, scheme="DPoP", proof=proof)
    assert_invalid_proof(verifier, error)
    assert "signature does not verify" in error.description


@pytest.mark.parametrize("offset", [-301, 61])
async def test_a_stale_or_future_proof_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock, offset: int
) -> None:
    key, token = await bound(store, clock)
    proof = proof_for(key, clock.now + offset, token)
    error = await refused(verifier, token, scheme="DPoP", proof=proof)
    assert_invalid_proof(verifier, error)
    assert error.description == "DPoP proof: iat is missing or outside the acceptable window."


async def test_a_proof_with_an_algorithm_not_accepted_is_refused(
    as_http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock
) -> None:
    verifier = TokenVerifier(
        issuer=ISSUER, resource=RESOURCE, dpop_algorithms=["ES256"], http=as_http, clock=clock
    )
    ed = ed_key()
    token = await mint_bound(store, clock.now, ed)
    error = await refused(verifier, token, scheme="DPoP", proof=proof_for(ed, clock.now, token))
    assert_invalid_proof(verifier, error)
    assert error.description == "DPoP proof: alg 'Ed25519' is not accepted."
    assert verifier.challenge(error) == (
        'DPoP error="invalid_dpop_proof", error_description="DPoP proof: alg \'Ed25519\' is '
        'not accepted.", algs="ES256", Bearer'
    )


async def test_a_proof_that_is_not_a_jws_is_refused(
    verifier: TokenVerifier, store: SQLiteStore, clock: FrozenClock
) -> None:
    _, token = await bound(store, clock)
    error = await refused(verifier, token, scheme="DPoP", proof="not-a-proof")
    assert_invalid_proof(verifier, error)


async def test_a_bad_proof_is_refused_before_the_issuer_is_asked(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
) -> None:
    _, token = await bound(store, clock)
    await refused(verifier, token, scheme="DPoP", proof="not-a-proof")
    assert as_transport.requests == []

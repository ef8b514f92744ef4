"""DPoP proofs (RFC 9449 4.3) one by one, and the stateless server nonces (RFC 9449 8)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from grantline.errors import InvalidDpopProof
from grantline.protocol.dpop import (
    DPOP_ALGS,
    FUTURE_LEEWAY,
    NONCE_PERIOD,
    Proof,
    access_token_hash,
    check_proof,
    nonce_for,
    nonce_valid,
    normalize_htu,
)
from tests.jose_helpers import (
    TOKEN_URL,
    b64url,
    dpop_proof,
    ec_key,
    ed_key,
    hs256_token,
    public_jwk,
    rsa_key,
    sign,
    thumbprint,
    unsigned_token,
)

NOW = 1_700_000_000
WINDOW = 300
SECRET = b"s" * 32


def check(token: str, **kwargs: Any) -> Proof:
    options: dict[str, Any] = {"method": "POST", "url": TOKEN_URL, "now": NOW, "window": WINDOW}
    options.update(kwargs)
    return check_proof(token, **options)


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        pytest.param(ec_key, "ES256", id="ES256"),
        pytest.param(ed_key, "Ed25519", id="Ed25519"),
        pytest.param(ed_key, "EdDSA", id="EdDSA"),
        pytest.param(rsa_key, "PS256", id="PS256"),
        pytest.param(rsa_key, "RS256", id="RS256"),
    ],
)
def test_a_good_proof_yields_the_rfc7638_thumbprint(make: Any, alg: str) -> None:
    key = make()
    proof = check(dpop_proof(key, NOW, alg=alg, jti="p-1", nonce="n-1"))
    assert proof == Proof(jkt=thumbprint(public_jwk(key)), jti="p-1", iat=NOW, nonce="n-1")


def test_dpop_algorithms_are_asymmetric() -> None:
    assert "none" not in DPOP_ALGS
    assert not any(alg.startswith("HS") for alg in DPOP_ALGS)


def test_the_rfc_9449_example_thumbprint() -> None:
    # RFC 9449 section 4.1 / RFC 7638 3.1 style: a fixed EC key has a fixed thumbprint.
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    }
    canonical = (
        '{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",'
        '"y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}'
    )
    assert thumbprint(jwk) == b64url(hashlib.sha256(canonical.encode()).digest())


def test_iat_window_edges_are_inclusive() -> None:
    key = ec_key()
    assert check(dpop_proof(key, NOW - WINDOW)).iat == NOW - WINDOW
    assert check(dpop_proof(key, NOW + FUTURE_LEEWAY)).iat == NOW + FUTURE_LEEWAY


@pytest.mark.parametrize(
    "htu",
    [
        f"{TOKEN_URL}?foo=bar",
        f"{TOKEN_URL}#frag",
        TOKEN_URL.replace("http://", "HTTP://"),
    ],
)
def test_htu_is_compared_without_query_fragment_or_scheme_case(htu: str) -> None:
    assert check(dpop_proof(ec_key(), NOW, htu=htu)).iat == NOW


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://AS.Example/token?x=1#y", "https://as.example/token"),
        ("https://as.example:443/token", "https://as.example/token"),
        ("http://as.example:80/token", "http://as.example/token"),
        ("http://as.example:8080/token", "http://as.example:8080/token"),
        ("https://as.example", "https://as.example/"),
    ],
)
def test_normalize_htu(url: str, normal: str) -> None:
    assert normalize_htu(url) == normal


def other_signer(key: Any) -> str:
    """Header jwk is ``key``'s, signature by a different key."""
    return dpop_proof(ec_key(), NOW, jwk=public_jwk(key))


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        pytest.param(lambda k: dpop_proof(k, NOW, htm="GET"), "htm", id="other-method"),
        pytest.param(lambda k: dpop_proof(k, NOW, htm="post"), "htm", id="method-case"),
        pytest.param(lambda k: dpop_proof(k, NOW, htm=None), "htm", id="no-htm"),
        pytest.param(
            lambda k: dpop_proof(k, NOW, htu="http://127.0.0.1:8000/par"), "htu", id="other-path"
        ),
        pytest.param(
            lambda k: dpop_proof(k, NOW, htu="http://evil.example/token"), "htu", id="other-host"
        ),
        pytest.param(
            lambda k: dpop_proof(k, NOW, htu="https://127.0.0.1:8000/token"),
            "htu",
            id="other-scheme",
        ),
        pytest.param(lambda k: dpop_proof(k, NOW, htu=None), "htu", id="no-htu"),
        pytest.param(lambda k: dpop_proof(k, NOW, htu=["x"]), "htu", id="htu-list"),
        pytest.param(lambda k: dpop_proof(k, NOW - WINDOW - 1), "iat", id="stale"),
        pytest.param(lambda k: dpop_proof(k, NOW + FUTURE_LEEWAY + 1), "iat", id="future"),
        pytest.param(lambda k: dpop_proof(k, NOW, iat=None), "iat", id="no-iat"),
        pytest.param(lambda k: dpop_proof(k, NOW, iat="now"), "iat is not a number", id="iat-str"),
        pytest.param(lambda k: dpop_proof(k, NOW, jti=None), "jti is required", id="no-jti"),
        pytest.param(lambda k: dpop_proof(k, NOW, jti=""), "jti is required", id="empty-jti"),
        pytest.param(lambda k: dpop_proof(k, NOW, jti=5), "jti is required", id="jti-number"),
        pytest.param(lambda k: dpop_proof(k, NOW, jti="j" * 257), "jti is required", id="long"),
        pytest.param(lambda k: dpop_proof(k, NOW, typ="JWT"), "typ must be", id="typ-jwt"),
        pytest.param(lambda k: dpop_proof(k, NOW, typ=None), "typ must be", id="no-typ"),
        pytest.param(
            lambda k: dpop_proof(k, NOW, typ="oauth-authz-req+jwt"), "typ must be", id="typ-jar"
        ),
        pytest.param(
            lambda k: dpop_proof(k, NOW, jwk=k.as_dict(private=True)),
            "private key material",
            id="private-jwk",
        ),
        pytest.param(
            lambda k: hs256_token(
                b"s" * 32,
                {"htm": "POST", "htu": TOKEN_URL, "iat": NOW, "jti": "j"},
                {"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": b64url(b"s" * 32)}},
            ),
            "not an asymmetric",
            id="symmetric-jwk",
        ),
        pytest.param(
            lambda k: hs256_token(
                b"s" * 32,
                {"htm": "POST", "htu": TOKEN_URL, "iat": NOW, "jti": "j"},
                {"typ": "dpop+jwt", "jwk": public_jwk(k)},
            ),
            "alg 'HS256' is not allowed",
            id="hs256",
        ),
        pytest.param(
            lambda k: unsigned_token(
                {"htm": "POST", "htu": TOKEN_URL, "iat": NOW, "jti": "j"},
                {"typ": "dpop+jwt", "jwk": public_jwk(k)},
            ),
            "alg 'none' is not allowed",
            id="alg-none",
        ),
        pytest.param(
            lambda k: sign(k, {"htm": "POST"}, header={"typ": "dpop+jwt", "kid": None}),
            "jwk is not an asymmetric",
            id="no-jwk",
        ),
        pytest.param(other_signer, "signature does not verify", id="signed-by-other-key"),
        pytest.param(lambda k: "not.a.proof", "not a compact JWS", id="garbage"),
    ],
)
def test_bad_proofs_are_invalid_dpop_proof(forge: Any, reason: str) -> None:
    with pytest.raises(InvalidDpopProof, match=reason) as caught:
        check(forge(ec_key()))
    assert caught.value.error == "invalid_dpop_proof"
    assert caught.value.status_code == 400


def test_ath_binds_a_proof_to_an_access_token() -> None:
    key = ec_key()
    token = "an-access-token"
    expected = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=")
    assert access_token_hash(token) == expected.decode()
    good = dpop_proof(key, NOW, ath=access_token_hash(token))
    assert check(good, access_token=token).jkt == thumbprint(public_jwk(key))
    for bad in (dpop_proof(key, NOW), dpop_proof(key, NOW, ath=access_token_hash("other"))):
        with pytest.raises(InvalidDpopProof, match="ath"):
            check(bad, access_token=token)


def test_a_non_string_nonce_is_treated_as_absent() -> None:
    assert check(dpop_proof(ec_key(), NOW, nonce=123)).nonce is None


@pytest.mark.parametrize("htu", ["http://127.0.0.1:notaport/token", "http://127.0.0.1:99999/t"])
def test_an_htu_with_a_broken_port_is_an_invalid_proof(htu: str) -> None:
    with pytest.raises(InvalidDpopProof, match="htu"):
        check(dpop_proof(ec_key(), NOW, htu=htu))


# -- nonces ---------------------------------------------------------------------------------


def test_nonces_are_stable_within_a_period_and_change_across() -> None:
    start = NOW - NOW % NONCE_PERIOD
    nonce = nonce_for(SECRET, start)
    assert nonce == nonce_for(SECRET, start + NONCE_PERIOD - 1)
    assert nonce != nonce_for(SECRET, start + NONCE_PERIOD)
    assert nonce != nonce_for(b"t" * 32, start)
    assert len(nonce) == 32  # 24 bytes, base64url


def test_the_current_and_previous_nonce_are_valid_older_ones_not() -> None:
    start = NOW - NOW % NONCE_PERIOD
    current = nonce_for(SECRET, start)
    assert nonce_valid(SECRET, current, start)
    assert nonce_valid(SECRET, current, start + NONCE_PERIOD)
    assert nonce_valid(SECRET, current, start + 2 * NONCE_PERIOD - 1)
    assert not nonce_valid(SECRET, current, start + 2 * NONCE_PERIOD)
    assert not nonce_valid(SECRET, current, start - 1)  # a nonce from the future is not valid
    assert not nonce_valid(SECRET, None, start)
    assert not nonce_valid(SECRET, "made-up", start)
    assert not nonce_valid(b"t" * 32, current, start)

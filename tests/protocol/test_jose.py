"""The JWS policy shared by assertions, request objects and DPoP proofs: an asymmetric
allow-list, public keys only, and a reason for every refusal."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc.jwk import KeySet

from grantline.protocol.jose import (
    CLIENT_SIGNING_ALGS,
    MAX_TOKEN_LENGTH,
    JoseFailure,
    number,
    public_key_from_jwk,
    read_header,
    verify_compact,
)
from tests.jose_helpers import (
    AnyKey,
    b64url,
    ec_key,
    ed_key,
    hs256_token,
    public_jwk,
    rsa_key,
    sign,
    thumbprint,
    unsigned_token,
)

CLAIMS = {"iss": "signer", "n": 1}


def keyset(*keys: AnyKey) -> KeySet:
    return KeySet([public_key_from_jwk(public_jwk(k)) for k in keys])


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        pytest.param(lambda: ec_key("k"), "ES256", id="ES256"),
        pytest.param(lambda: ed_key("k"), "Ed25519", id="Ed25519"),
        pytest.param(lambda: ed_key("k"), "EdDSA", id="EdDSA"),
        pytest.param(lambda: rsa_key("k"), "PS256", id="PS256"),
    ],
)
def test_allowed_algorithms_verify(make: object, alg: str) -> None:
    assert callable(make)
    key: AnyKey = make()
    token = sign(key, CLAIMS, alg=alg)
    header, claims = verify_compact(token, keyset(key), CLIENT_SIGNING_ALGS)
    assert header["alg"] == alg
    assert claims == CLAIMS
    # A single imported public key works as well as a set.
    assert verify_compact(token, public_key_from_jwk(public_jwk(key)), CLIENT_SIGNING_ALGS)[1]


def test_the_allow_list_is_asymmetric_only() -> None:
    assert set(CLIENT_SIGNING_ALGS) == {"ES256", "EdDSA", "Ed25519", "PS256"}
    assert not any(alg.startswith("HS") or alg == "none" for alg in CLIENT_SIGNING_ALGS)


def test_alg_none_is_refused() -> None:
    key = ec_key()
    with pytest.raises(JoseFailure, match="alg 'none' is not allowed"):
        verify_compact(unsigned_token(CLAIMS), keyset(key), CLIENT_SIGNING_ALGS)


@pytest.mark.parametrize("form", ["pem", "jwk-json"])
def test_hmac_with_the_public_key_as_secret_is_refused(form: str) -> None:
    key = ec_key()
    secret = (
        key.as_pem(private=False)
        if form == "pem"
        else json.dumps(public_jwk(key), separators=(",", ":")).encode()
    )
    token = hs256_token(secret, CLAIMS)
    with pytest.raises(JoseFailure, match="alg 'HS256' is not allowed"):
        verify_compact(token, keyset(key), CLIENT_SIGNING_ALGS)
    with pytest.raises(JoseFailure, match="alg 'HS256' is not allowed"):
        verify_compact(token, public_key_from_jwk(public_jwk(key)), CLIENT_SIGNING_ALGS)


def test_an_algorithm_outside_the_list_is_refused_even_with_a_valid_signature() -> None:
    key = rsa_key("k")
    token = sign(key, CLAIMS, alg="RS256")
    assert verify_compact(token, keyset(key), ("RS256",))[1] == CLAIMS
    with pytest.raises(JoseFailure, match="alg 'RS256' is not allowed"):
        verify_compact(token, keyset(key), CLIENT_SIGNING_ALGS)


def test_a_signature_by_another_key_is_refused() -> None:
    mine, theirs = ec_key("k"), ec_key("k")
    with pytest.raises(JoseFailure, match="signature does not verify"):
        verify_compact(sign(theirs, CLAIMS), keyset(mine), CLIENT_SIGNING_ALGS)


def test_a_tampered_payload_is_refused() -> None:
    key = ec_key()
    head, _, signature = sign(key, CLAIMS).split(".")
    forged = b64url(json.dumps({**CLAIMS, "iss": "mallory"}).encode())
    with pytest.raises(JoseFailure, match="signature does not verify"):
        verify_compact(f"{head}.{forged}.{signature}", keyset(key), CLIENT_SIGNING_ALGS)


def test_alg_and_key_type_must_agree() -> None:
    ec = ec_key()
    # A PS256 token checked against a registered EC key: no cross-type verification.
    token = sign(rsa_key(), CLAIMS, alg="PS256")
    with pytest.raises(JoseFailure, match="signature does not verify"):
        verify_compact(token, public_key_from_jwk(public_jwk(ec)), CLIENT_SIGNING_ALGS)


def test_the_key_is_picked_by_kid() -> None:
    first, second = ec_key("one"), ed_key("two")
    keys = keyset(first, second)
    assert verify_compact(sign(second, CLAIMS), keys, CLIENT_SIGNING_ALGS)[1] == CLAIMS
    assert verify_compact(sign(first, CLAIMS), keys, CLIENT_SIGNING_ALGS)[1] == CLAIMS
    with pytest.raises(JoseFailure, match="no key with kid 'three'"):
        verify_compact(sign(ec_key("three"), CLAIMS), keys, CLIENT_SIGNING_ALGS)


def test_no_kid_is_fine_with_one_key_but_not_with_several() -> None:
    only = ec_key("one")
    token = sign(only, CLAIMS, header={"kid": None})
    assert "kid" not in read_header(token)
    assert verify_compact(token, keyset(only), CLIENT_SIGNING_ALGS)[1] == CLAIMS
    with pytest.raises(JoseFailure, match="no kid and the client has several keys"):
        verify_compact(token, keyset(only, ec_key("two")), CLIENT_SIGNING_ALGS)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"not json", "payload is not JSON", id="not-json"),
        pytest.param(b"[1, 2]", "payload is not a JSON object", id="array"),
        pytest.param(b'"text"', "payload is not a JSON object", id="string"),
    ],
)
def test_the_payload_must_be_a_json_object(payload: bytes, reason: str) -> None:
    key = ec_key()
    with pytest.raises(JoseFailure, match=reason):
        verify_compact(sign(key, payload), keyset(key), CLIENT_SIGNING_ALGS)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a.b", id="two-parts"),
        pytest.param("a.b.c.d.e", id="jwe-shaped"),
        pytest.param("!!!.e30.", id="bad-base64"),
        pytest.param(b64url(b"not json") + ".e30.", id="header-not-json"),
        pytest.param("x" * MAX_TOKEN_LENGTH + "..", id="too-long"),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(JoseFailure, match="not a compact JWS"):
        read_header(token)
    with pytest.raises(JoseFailure):
        verify_compact(token, keyset(ec_key()), CLIENT_SIGNING_ALGS)


def test_a_header_that_is_not_an_object_is_refused() -> None:
    token = base64.urlsafe_b64encode(b"[1]").decode().rstrip("=") + ".e30.c2ln"
    with pytest.raises(JoseFailure):
        read_header(token)


def test_public_keys_of_every_type_import_with_their_thumbprint() -> None:
    for key in (ec_key(), ed_key(), rsa_key()):
        jwk = public_jwk(key)
        imported = public_key_from_jwk(jwk)
        assert imported.thumbprint() == thumbprint(jwk)


@pytest.mark.parametrize(
    ("jwk_of", "reason"),
    [
        pytest.param(
            lambda: ec_key().as_dict(private=True), "private key material", id="ec-private"
        ),
        pytest.param(
            lambda: ed_key().as_dict(private=True), "private key material", id="okp-private"
        ),
        pytest.param(
            lambda: rsa_key().as_dict(private=True), "private key material", id="rsa-private"
        ),
        pytest.param(
            lambda: {**public_jwk(rsa_key()), "p": "AQAB"}, "private key material", id="rsa-prime"
        ),
        pytest.param(
            lambda: {"kty": "oct", "k": b64url(b"s" * 32)}, "not an asymmetric", id="symmetric"
        ),
        pytest.param(
            lambda: {**public_jwk(ec_key()), "k": "AA"}, "private key material", id="ec-with-k"
        ),
        pytest.param(lambda: {"kty": "EC", "crv": "P-256"}, "not a valid public key", id="no-x"),
        pytest.param(
            lambda: {**public_jwk(ec_key()), "x": b64url(b"\x01" * 32)},
            "not a valid public key",
            id="not-on-curve",
        ),
        pytest.param(lambda: {"kty": "XYZ"}, "not an asymmetric", id="unknown-kty"),
        pytest.param(lambda: "a string", "not an asymmetric", id="not-an-object"),
        pytest.param(lambda: None, "not an asymmetric", id="missing"),
    ],
)
def test_only_public_asymmetric_jwks_are_accepted(jwk_of: object, reason: str) -> None:
    assert callable(jwk_of)
    with pytest.raises(JoseFailure, match=reason):
        public_key_from_jwk(jwk_of())


def test_number_reads_numeric_dates() -> None:
    assert number({}, "exp") is None
    assert number({"exp": None}, "exp") is None
    assert number({"exp": 1700000000}, "exp") == 1700000000
    assert number({"exp": 1700000000.9}, "exp") == 1700000000
    for bad in (True, "1700000000", [1], {"n": 1}):
        with pytest.raises(JoseFailure, match="exp is not a number"):
            number({"exp": bad}, "exp")


@pytest.mark.parametrize("raw", ["1e400", "-1e400", "NaN", "Infinity", "1e300", "9007199254740993"])
def test_number_refuses_numbers_out_of_range(raw: str) -> None:
    # 1e400 is valid JSON and parses to inf; NaN and Infinity are Python's JSON extensions.
    claims = json.loads(f'{{"exp": {raw}}}')
    with pytest.raises(JoseFailure, match="exp is out of range"):
        number(claims, "exp")
    assert number({"exp": 2**53}, "exp") == 2**53


def test_a_payload_with_a_lone_surrogate_is_refused() -> None:
    key = ec_key()
    token = sign(key, rb'{"iss": "\ud800"}')
    with pytest.raises(JoseFailure, match="not valid Unicode"):
        verify_compact(token, keyset(key), CLIENT_SIGNING_ALGS)

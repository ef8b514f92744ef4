"""The minted fixtures are what Grantline itself accepts: a rejected fixture would turn a
benchmark into a measurement of refusals."""

from __future__ import annotations

import hashlib
import time

from joserfc.jwk import KeySet

from grantline.client_auth import PresentedCredentials, verify_assertion
from grantline.errors import InvalidDpopProof
from grantline.protocol.dpop import check_proof
from suite.jws import EcKey, b64url, pkce_pair


def test_client_assertions_verify_and_each_has_its_own_jti() -> None:
    key = EcKey.generate()
    jwk: dict[str, str | list[str]] = {**key.public_jwk()}
    keys = KeySet.import_key_set({"keys": [jwk]})
    jtis = set()
    for assertion in key.client_assertions("bench-jwt", "http://127.0.0.1:1", 3):
        presented = PresentedCredentials("bench-jwt", "private_key_jwt", None, assertion)
        jti, _ = verify_assertion(
            presented,
            keys,
            audiences={"http://127.0.0.1:1"},
            now=int(time.time()),
            max_lifetime=3600,
        )
        jtis.add(jti)
    assert len(jtis) == 3


def test_dpop_proof_binds_method_url_token_and_key() -> None:
    key = EcKey.generate()
    proof = key.dpop_proof("GET", "http://127.0.0.1:1/resource", "the-token")
    checked = check_proof(
        proof,
        method="GET",
        url="http://127.0.0.1:1/resource",
        now=int(time.time()),
        window=300,
        access_token="the-token",
    )
    assert checked.jkt == key.thumbprint()


def test_dpop_proof_for_another_token_is_refused() -> None:
    proof = EcKey.generate().dpop_proof("GET", "http://127.0.0.1:1/resource", "the-token")
    try:
        check_proof(
            proof,
            method="GET",
            url="http://127.0.0.1:1/resource",
            now=int(time.time()),
            window=300,
            access_token="another-token",
        )
    except InvalidDpopProof:
        return
    raise AssertionError("a proof for another token was accepted")


def test_pkce_pair_is_s256() -> None:
    verifier, challenge = pkce_pair()
    assert challenge == b64url(hashlib.sha256(verifier.encode()).digest())
    assert 43 <= len(verifier) <= 128

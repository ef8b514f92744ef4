"""private_key_jwt assertions (RFC 7523 3): presenting one, and every claim check."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from joserfc.jwk import KeySet

from grantline.client_auth import (
    AUTH_PARAMS,
    PresentedCredentials,
    present_credentials,
    verify_assertion,
)
from grantline.errors import InvalidClient, InvalidRequest
from grantline.protocol.client_assertion import JWT_BEARER, LEEWAY, check_assertion_claims
from grantline.protocol.jose import public_key_from_jwk
from tests.helpers import ISSUER
from tests.jose_helpers import (
    assertion_form,
    client_assertion,
    ec_key,
    ed_key,
    hs256_token,
    public_jwk,
    rsa_key,
    sign,
    unsigned_token,
)

NOW = 1_700_000_000
AUDIENCES = {ISSUER}
MAX_LIFETIME = 3600


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "signer",
        "sub": "signer",
        "aud": ISSUER,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": "jti-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def check(**overrides: Any) -> tuple[str, int]:
    return check_assertion_claims(claims(**overrides), "signer", AUDIENCES, NOW, MAX_LIFETIME)


def test_a_good_assertion_yields_its_jti_and_exp() -> None:
    assert check() == ("jti-1", NOW + 60)
    assert check(aud=["https://other.example", ISSUER]) == ("jti-1", NOW + 60)
    # nbf and iat may be a little in the future (clock skew), and exp up to the maximum.
    assert check(nbf=NOW + LEEWAY, iat=NOW + LEEWAY, exp=NOW + MAX_LIFETIME)[1] == NOW + 3600


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"iss": "mallory"}, "iss and sub", id="iss-not-client"),
        pytest.param({"sub": "mallory"}, "iss and sub", id="sub-not-client"),
        pytest.param({"iss": None}, "iss and sub", id="no-iss"),
        pytest.param({"sub": None}, "iss and sub", id="no-sub"),
        pytest.param({"aud": "https://other.example"}, "aud", id="other-audience"),
        pytest.param({"aud": ISSUER + "/"}, "aud", id="issuer-with-slash"),
        pytest.param({"aud": ["https://other.example"]}, "aud", id="list-without-issuer"),
        pytest.param({"aud": None}, "aud", id="no-aud"),
        pytest.param({"aud": {"iss": ISSUER}}, "aud", id="aud-object"),
        pytest.param({"exp": None}, "exp is required", id="no-exp"),
        pytest.param({"exp": NOW}, "expired", id="exp-now"),
        pytest.param({"exp": NOW - 1}, "expired", id="expired"),
        pytest.param({"exp": NOW + MAX_LIFETIME + 1}, "too far in the future", id="far-future"),
        pytest.param({"exp": "soon"}, "exp is not a number", id="exp-string"),
        pytest.param({"nbf": NOW + LEEWAY + 1}, "not valid yet", id="nbf-future"),
        pytest.param({"iat": NOW + LEEWAY + 1}, "issued in the future", id="iat-future"),
        pytest.param({"iat": True}, "iat is not a number", id="iat-bool"),
        pytest.param({"jti": None}, "jti is required", id="no-jti"),
        pytest.param({"jti": ""}, "jti is required", id="empty-jti"),
        pytest.param({"jti": 42}, "jti is required", id="jti-number"),
        pytest.param({"jti": "j" * 257}, "jti is required", id="jti-too-long"),
    ],
)
def test_bad_claims_are_invalid_client(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidClient, match=reason) as caught:
        check(**overrides)
    assert caught.value.status_code == 401
    assert caught.value.error == "invalid_client"


def presented(assertion: str, client_id: str = "signer") -> PresentedCredentials:
    return PresentedCredentials(client_id, "private_key_jwt", None, assertion)


def keyset_of(*keys: Any) -> KeySet:
    return KeySet([public_key_from_jwk(public_jwk(k)) for k in keys])


@pytest.mark.parametrize("make", [ec_key, ed_key, rsa_key], ids=["ES256", "Ed25519", "PS256"])
def test_verify_assertion_checks_signature_then_claims(make: Any) -> None:
    key = make("k1")
    assertion = client_assertion(key, "signer", NOW, jti="abc")
    jti, exp = verify_assertion(
        presented(assertion), keyset_of(key), audiences=AUDIENCES, now=NOW, max_lifetime=3600
    )
    assert (jti, exp) == ("abc", NOW + 60)


def test_eddsa_under_its_old_name_is_accepted() -> None:
    key = ed_key("k1")
    assertion = client_assertion(key, "signer", NOW, alg="EdDSA")
    assert verify_assertion(
        presented(assertion), keyset_of(key), audiences=AUDIENCES, now=NOW, max_lifetime=3600
    )


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(
            lambda key: client_assertion(ec_key("k1"), "signer", NOW), id="another-key-same-kid"
        ),
        pytest.param(lambda key: unsigned_token(claims(), {"kid": "k1"}), id="alg-none"),
        pytest.param(
            lambda key: hs256_token(key.as_pem(private=False), claims(), {"kid": "k1"}),
            id="hs256-public-pem",
        ),
        pytest.param(
            lambda key: sign(rsa_key("k1"), claims(), alg="RS256"), id="rs256-not-allowed"
        ),
        pytest.param(lambda key: "not-a-jwt", id="garbage"),
    ],
)
def test_forged_assertions_are_refused(forge: Any) -> None:
    key = ec_key("k1")
    with pytest.raises(InvalidClient, match="Client assertion") as caught:
        verify_assertion(
            presented(forge(key)), keyset_of(key), audiences=AUDIENCES, now=NOW, max_lifetime=3600
        )
    assert caught.value.status_code == 401


def test_the_claims_are_checked_against_the_presented_client() -> None:
    key = ec_key("k1")
    assertion = client_assertion(key, "signer", NOW)
    with pytest.raises(InvalidClient, match="iss and sub"):
        verify_assertion(
            presented(assertion, client_id="other"),
            keyset_of(key),
            audiences=AUDIENCES,
            now=NOW,
            max_lifetime=3600,
        )


# -- presenting ---------------------------------------------------------------------------


def test_an_assertion_names_its_client_by_client_id() -> None:
    params = assertion_form("a.b.c", "signer")
    creds = present_credentials(None, params)
    assert creds == PresentedCredentials("signer", "private_key_jwt", None, "a.b.c")


def test_without_client_id_the_client_is_the_assertions_sub() -> None:
    assertion = client_assertion(ec_key(), "signer", NOW)
    creds = present_credentials(None, assertion_form(assertion))
    assert creds.client_id == "signer"
    assert creds.method == "private_key_jwt"
    assert creds.assertion == assertion


def test_client_id_wins_over_the_sub_and_is_then_checked_against_it() -> None:
    key = ec_key("k1")
    assertion = client_assertion(key, "signer", NOW)
    creds = present_credentials(None, assertion_form(assertion, "victim"))
    assert creds.client_id == "victim"
    with pytest.raises(InvalidClient, match="iss and sub"):
        verify_assertion(creds, keyset_of(key), audiences=AUDIENCES, now=NOW, max_lifetime=3600)


def payload_token(payload: bytes) -> str:
    encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"eyJhbGciOiJFUzI1NiJ9.{encoded}.c2ln"


@pytest.mark.parametrize(
    ("params", "authorization", "error", "reason"),
    [
        pytest.param(
            {"client_assertion_type": "urn:other", "client_assertion": "a.b.c"},
            None,
            InvalidClient,
            "client_assertion_type must be",
            id="wrong-type",
        ),
        pytest.param(
            {"client_assertion": "a.b.c", "client_id": "signer"},
            None,
            InvalidClient,
            "client_assertion_type must be",
            id="missing-type",
        ),
        pytest.param(
            {"client_assertion_type": JWT_BEARER, "client_id": "signer"},
            None,
            InvalidClient,
            "client_assertion is missing",
            id="missing-assertion",
        ),
        pytest.param(
            {**assertion_form("a.b.c", "signer"), "client_secret": "s"},
            None,
            InvalidRequest,
            "exactly one",
            id="with-secret",
        ),
        pytest.param(
            assertion_form("a.b.c", "signer"),
            "Basic c2lnbmVyOnM=",
            InvalidRequest,
            "exactly one",
            id="with-basic",
        ),
        pytest.param(assertion_form("no-dots"), None, InvalidClient, "not a JWT", id="not-a-jwt"),
        pytest.param(
            assertion_form(payload_token(b'{"iss": "signer"}')),
            None,
            InvalidClient,
            "no sub",
            id="no-sub",
        ),
        pytest.param(
            assertion_form(payload_token(b'["signer"]')),
            None,
            InvalidClient,
            "no sub",
            id="payload-array",
        ),
        pytest.param(
            assertion_form(payload_token(b'{"sub": ""}')),
            None,
            InvalidClient,
            "no sub",
            id="empty-sub",
        ),
    ],
)
def test_malformed_assertion_presentations(
    params: dict[str, str], authorization: str | None, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        present_credentials(authorization, params)


def test_assertions_are_credentials_and_never_stored() -> None:
    assert {"client_assertion", "client_assertion_type"} <= AUTH_PARAMS

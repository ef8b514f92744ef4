"""Request object claims (RFC 9101 6.3): who signed it for whom, for how long, and what
parameters it carries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grantline.errors import InvalidRequestObject
from grantline.protocol.params import VALUE_SEPARATOR
from grantline.protocol.request_object import LEEWAY, REQUEST_OBJECT_TYP, request_object_params
from tests.helpers import ISSUER, REDIRECT_URI

NOW = 1_700_000_000
MAX_LIFETIME = 3600
HEADER = {"alg": "ES256", "typ": REQUEST_OBJECT_TYP}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "signer",
        "aud": ISSUER,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": "ro-1",
        "client_id": "signer",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "inbox.read",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def unpack(
    header: dict[str, Any] | None = None, **overrides: Any
) -> tuple[dict[str, str], str, int]:
    return request_object_params(
        header if header is not None else HEADER,
        claims(**overrides),
        client_id="signer",
        issuer=ISSUER,
        now=NOW,
        max_lifetime=MAX_LIFETIME,
    )


def test_parameters_come_out_without_the_jwt_claims() -> None:
    params, jti, exp = unpack()
    assert params == {
        "client_id": "signer",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "inbox.read",
    }
    assert (jti, exp) == ("ro-1", NOW + 300)


def test_without_jti_the_caller_gets_an_empty_one() -> None:
    assert unpack(jti=None)[1] == ""


def test_client_id_comes_from_the_client_even_when_the_claim_is_absent() -> None:
    params, _, _ = unpack(client_id=None)
    assert params["client_id"] == "signer"


@pytest.mark.parametrize("typ", [REQUEST_OBJECT_TYP, "JWT", None])
def test_accepted_typ_values(typ: str | None) -> None:
    header = {"alg": "ES256"} if typ is None else {"alg": "ES256", "typ": typ}
    assert unpack(header)[0]["scope"] == "inbox.read"


def test_json_claims_become_parameters_the_validator_understands() -> None:
    details = [{"type": "payment_initiation", "instructedAmount": {"amount": "1"}}]
    resources = ["https://api.example/payments", "https://api.example/files"]
    params, _, _ = unpack(authorization_details=details, resource=resources)
    assert json.loads(params["authorization_details"]) == details
    assert params["resource"].split(VALUE_SEPARATOR) == resources
    assert unpack(resource="https://api.example/files")[0]["resource"] == (
        "https://api.example/files"
    )


def test_limits_of_lifetime_are_inclusive() -> None:
    assert unpack(exp=NOW + MAX_LIFETIME, nbf=NOW)[2] == NOW + MAX_LIFETIME
    assert unpack(nbf=NOW + LEEWAY, iat=NOW + LEEWAY)[0]


@pytest.mark.parametrize(
    ("header", "overrides", "reason"),
    [
        pytest.param({"alg": "ES256", "typ": "dpop+jwt"}, {}, "typ must be", id="typ-dpop"),
        pytest.param({"alg": "ES256", "typ": "at+jwt"}, {}, "typ must be", id="typ-at-jwt"),
        pytest.param(None, {"iss": "mallory"}, "iss must be", id="other-iss"),
        pytest.param(None, {"iss": None}, "iss must be", id="no-iss"),
        pytest.param(None, {"aud": "https://other.example"}, "aud must be", id="other-aud"),
        pytest.param(None, {"aud": f"{ISSUER}/par"}, "aud must be", id="par-endpoint-aud"),
        pytest.param(None, {"aud": ["https://other.example"]}, "aud must be", id="aud-list"),
        pytest.param(None, {"aud": None}, "aud must be", id="no-aud"),
        pytest.param(None, {"client_id": "mallory"}, "client_id claim", id="other-client-id"),
        pytest.param(None, {"exp": None}, "expired or has no exp", id="no-exp"),
        pytest.param(None, {"exp": NOW}, "expired or has no exp", id="exp-now"),
        pytest.param(None, {"exp": NOW - 10}, "expired or has no exp", id="expired"),
        pytest.param(None, {"exp": NOW + MAX_LIFETIME + 1}, "lives too long", id="exp-too-far"),
        pytest.param(
            None,
            {"nbf": NOW - 100, "exp": NOW - 100 + MAX_LIFETIME + 1},
            "lives too long",
            id="nbf-to-exp-too-long",
        ),
        pytest.param(None, {"nbf": NOW + LEEWAY + 1}, "not valid yet", id="nbf-future"),
        pytest.param(None, {"iat": NOW + LEEWAY + 1}, "issued in the future", id="iat-future"),
        pytest.param(None, {"exp": "later"}, "exp is not a number", id="exp-string"),
        pytest.param(None, {"request": "e30.e30."}, "must not contain", id="nested-request"),
        pytest.param(
            None, {"request_uri": "https://x.example/r"}, "must not contain", id="nested-uri"
        ),
        pytest.param(None, {"jti": ""}, "jti must be", id="empty-jti"),
        pytest.param(None, {"jti": 7}, "jti must be", id="jti-number"),
        pytest.param(None, {"jti": "j" * 257}, "jti must be", id="jti-too-long"),
        pytest.param(None, {"scope": ["inbox.read"]}, "scope claim must be", id="scope-list"),
        pytest.param(None, {"max_age": 5}, "max_age claim must be", id="number-param"),
        pytest.param(None, {"resource": [1, 2]}, "resource claim must be", id="resource-ints"),
        pytest.param(
            None, {"state": "a" + VALUE_SEPARATOR + "b"}, "control character", id="separator"
        ),
    ],
)
def test_refusals_are_invalid_request_object(
    header: dict[str, Any] | None, overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidRequestObject, match=reason) as caught:
        unpack(header, **overrides)
    assert caught.value.error == "invalid_request_object"
    assert caught.value.status_code == 400


def test_the_separator_is_refused_inside_array_items_too() -> None:
    smuggled = "https://api.example/files" + VALUE_SEPARATOR + "https://api.example/payments"
    with pytest.raises(InvalidRequestObject, match="control character"):
        unpack(resource=[smuggled])

"""RFC 9396 shape checks, type checks and the token-endpoint subset rule, attacked directly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from grantline.errors import InvalidAuthorizationDetails
from grantline.models import Client
from grantline.policy.authorization_details import DetailTypeRegistry
from grantline.protocol.authorization_request import validate_authorization_request
from grantline.protocol.pkce import s256_challenge
from grantline.protocol.rar import (
    MAX_DEPTH,
    MAX_DETAILS,
    check_details_subset,
    parse_authorization_details,
    validate_authorization_details,
)
from tests.helpers import EXAMPLE_TYPES, REDIRECT_URI

#: RFC 9396 section 2, verbatim.
PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status", "cancel"],
    "locations": ["https://example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Ref Number Merchant",
}
FILES: dict[str, Any] = {
    "type": "file_access",
    "actions": ["read", "list"],
    "locations": ["/reports"],
}
DEPLOY: dict[str, Any] = {
    "type": "deployment",
    "service": "api",
    "version": "1.2.3",
    "environment": "staging",
}

REGISTRY = DetailTypeRegistry(EXAMPLE_TYPES)


def refusal(raw: str) -> str:
    """The description of the refusal ``raw`` earns from the shape checks."""
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        parse_authorization_details(raw)
    assert caught.value.error == "invalid_authorization_details"
    assert caught.value.http_status == 400
    return caught.value.description


def type_refusal(items: list[Any], allowed: tuple[str, ...] = ()) -> str:
    details = parse_authorization_details(json.dumps(items))
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        validate_authorization_details(details, REGISTRY, allowed)
    return caught.value.description


def with_(base: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


# -- parsing and the common shape ------------------------------------------------------------


def test_absent_parameter_means_no_details() -> None:
    assert parse_authorization_details(None) == ()


def test_rfc_9396_payment_example_is_accepted_unchanged() -> None:
    details = parse_authorization_details(json.dumps([PAYMENT, FILES, DEPLOY]))
    assert details == (PAYMENT, FILES, DEPLOY)
    validate_authorization_details(details, REGISTRY, ())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "authorization_details is not valid JSON."),
        ("[", "authorization_details is not valid JSON."),
        ('[{"type": "deployment"}] trailing', "authorization_details is not valid JSON."),
        ('{"type": "deployment"}', "authorization_details must be a JSON array."),
        ('"deployment"', "authorization_details must be a JSON array."),
        ("null", "authorization_details must be a JSON array."),
        ("[]", "authorization_details must not be empty."),
        ('["deployment"]', "authorization_details[0] must be a JSON object."),
        ('[{"type": "deployment"}, null]', "authorization_details[1] must be a JSON object."),
        ("[[]]", "authorization_details[0] must be a JSON object."),
        ("[{}]", "authorization_details[0].type is required and must be a string."),
        ('[{"type": ""}]', "authorization_details[0].type is required and must be a string."),
        ('[{"type": 7}]', "authorization_details[0].type is required and must be a string."),
        (
            '[{"type": "a"}, {"type": ["deployment"]}]',
            "authorization_details[1].type is required and must be a string.",
        ),
    ],
)
def test_malformed_structure_is_refused(raw: str, expected: str) -> None:
    assert refusal(raw) == expected


@pytest.mark.parametrize("field", ["locations", "actions", "datatypes", "privileges"])
@pytest.mark.parametrize("value", ["read", [], [""], ["ok", 1], [["read"]], {"a": "b"}, None])
def test_common_array_fields_must_be_non_empty_arrays_of_strings(field: str, value: Any) -> None:
    raw = json.dumps([{"type": "file_access"}, {"type": "file_access", field: value}])
    assert refusal(raw) == f"authorization_details[1].{field} must be a non-empty array of strings."


@pytest.mark.parametrize("value", [1, ["id"], {"id": 1}, None, True])
def test_identifier_must_be_a_string(value: Any) -> None:
    raw = json.dumps([{"type": "file_access", "identifier": value}])
    assert refusal(raw) == "authorization_details[0].identifier must be a string."


@pytest.mark.parametrize(
    "raw",
    [
        '[{"type": "deployment", "type": "file_access"}]',
        '[{"type": "deployment", "x": {"k": 1, "k": 2}}]',
    ],
)
def test_duplicate_keys_are_refused_even_when_nested(raw: str) -> None:
    # A duplicate key is read one way by us and maybe another way by a resource server.
    assert "repeats the key" in refusal(raw)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(constant: str) -> None:
    description = refusal(f'[{{"type": "deployment", "n": {constant}}}]')
    assert description == f"authorization_details contains {constant}, which is not JSON."


def test_numbers_that_overflow_to_infinity_are_refused() -> None:
    refusal('[{"type": "deployment", "n": 1e400}]')


def test_at_most_max_details_items() -> None:
    assert len(parse_authorization_details(json.dumps([DEPLOY] * MAX_DETAILS))) == MAX_DETAILS
    raw = json.dumps([DEPLOY] * (MAX_DETAILS + 1))
    assert refusal(raw) == f"authorization_details has more than {MAX_DETAILS} items."


def nested(levels: int) -> str:
    return '[{"type": "deployment", "x": ' + "[" * levels + "]" * levels + "}]"


def test_nesting_is_bounded() -> None:
    # The array is level 0 and the item level 1, so MAX_DEPTH - 1 arrays inside an item fit.
    assert parse_authorization_details(nested(MAX_DEPTH - 1))
    assert refusal(nested(MAX_DEPTH)) == "authorization_details is nested too deeply."


def test_pathological_nesting_is_refused_without_crashing() -> None:
    # Deep enough to exhaust the JSON decoder's recursion: still a clean refusal.
    description = refusal("[" * 100_000 + "]" * 100_000)
    assert description in (
        "authorization_details is not valid JSON.",
        "authorization_details is nested too deeply.",
    )


# -- types -----------------------------------------------------------------------------------


def test_unknown_type_is_refused_with_its_index() -> None:
    description = type_refusal([DEPLOY, {"type": "wire_transfer"}])
    assert description == "authorization_details[1].type 'wire_transfer' is unknown."


def test_type_not_allowed_for_the_client_is_refused() -> None:
    description = type_refusal([FILES, PAYMENT], allowed=("file_access",))
    assert description == (
        "authorization_details[1].type 'payment_initiation' is not allowed for this client."
    )


def test_allowed_types_admit_their_items() -> None:
    details = parse_authorization_details(json.dumps([FILES]))
    validate_authorization_details(details, REGISTRY, ("file_access",))


@pytest.mark.parametrize(
    ("bad", "fragments"),
    [
        (
            with_(PAYMENT, instructedAmount={"currency": "EUR", "amount": "12,50"}),
            ["authorization_details[1].instructedAmount.amount", "12,50"],
        ),
        (
            with_(PAYMENT, instructedAmount={"currency": "eur", "amount": "1"}),
            ["authorization_details[1].instructedAmount.currency"],
        ),
        (
            without(PAYMENT, "creditorAccount"),
            ["authorization_details[1]:", "'creditorAccount' is a required property"],
        ),
        (
            with_(PAYMENT, beneficiary="Mallory"),
            ["authorization_details[1]:", "'beneficiary' was unexpected"],
        ),
        (
            with_(PAYMENT, creditorAccount={"iban": "DE02100100109307118603", "bic": "X"}),
            ["authorization_details[1].creditorAccount", "'bic' was unexpected"],
        ),
        (
            with_(PAYMENT, locations=["http://example.com/payments"]),
            ["authorization_details[1].locations.0"],
        ),
        (
            with_(PAYMENT, actions=["initiate", "refund"]),
            ["authorization_details[1].actions.1", "'refund'"],
        ),
        (
            with_(DEPLOY, environment="Prod; rm -rf /"),
            ["authorization_details[1].environment"],
        ),
        (
            with_(FILES, actions=["read", "read"]),
            ["authorization_details[1].actions", "non-unique"],
        ),
    ],
)
def test_items_failing_their_schema_name_the_item_and_field(
    bad: dict[str, Any], fragments: list[str]
) -> None:
    description = type_refusal([DEPLOY, bad])
    for fragment in fragments:
        assert fragment in description, description


def test_schema_error_messages_are_bounded() -> None:
    description = type_refusal([with_(PAYMENT, creditorName="x" * 5000)])
    assert description.startswith("authorization_details[0].creditorName: ")
    assert description.endswith("...")
    assert len(description) < 300


# -- the token endpoint's subset rule ---------------------------------------------------------


def test_a_subset_of_the_granted_items_is_fine() -> None:
    check_details_subset((FILES,), (PAYMENT, FILES))
    check_details_subset((PAYMENT, FILES), (PAYMENT, FILES))


@pytest.mark.parametrize(
    "requested",
    [
        (with_(PAYMENT, instructedAmount={"currency": "EUR", "amount": "9999.00"}),),
        (with_(FILES, actions=["read", "list", "delete"]),),
        (DEPLOY,),
        (FILES, DEPLOY),
    ],
)
def test_anything_beyond_the_granted_items_is_refused(requested: tuple[dict[str, Any]]) -> None:
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        check_details_subset(requested, (PAYMENT, FILES))
    index = len(requested) - 1
    assert caught.value.description == f"authorization_details[{index}] was not granted."


# -- the shared validator ---------------------------------------------------------------------


def auth_params(**extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "code_challenge": s256_challenge("v" * 43),
        "code_challenge_method": "S256",
        **extra,
    }


def test_shared_validator_keeps_the_validated_items() -> None:
    client = Client("agent", "Agent", "client_secret_basic", (REDIRECT_URI,))
    request = validate_authorization_request(
        auth_params(authorization_details=json.dumps([PAYMENT])),
        client,
        known_scopes=(),
        detail_types=REGISTRY,
        pushed=True,
    )
    assert request.authorization_details == (PAYMENT,)
    assert request.to_json()["authorization_details"] == [PAYMENT]


def test_shared_validator_applies_the_clients_types() -> None:
    client = Client(
        "agent",
        "Agent",
        "client_secret_basic",
        (REDIRECT_URI,),
        authorization_details_types=("file_access",),
    )
    with pytest.raises(InvalidAuthorizationDetails, match="not allowed for this client"):
        validate_authorization_request(
            auth_params(authorization_details=json.dumps([PAYMENT])),
            client,
            known_scopes=(),
            detail_types=REGISTRY,
            pushed=False,
        )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Merchant \\u202eA", id="bidi-override"),
        pytest.param("Merch\\u200bant", id="zero-width-space"),
        pytest.param("line\\nbreak", id="newline"),
        pytest.param("/r\\ud800", id="lone-surrogate"),
    ],
)
def test_characters_that_disguise_text_are_refused(text: str) -> None:
    raw = '[{"type": "file_access", "locations": ["' + text + '"], "actions": ["read"]}]'
    with pytest.raises(InvalidAuthorizationDetails, match=r"authorization_details\[0\] contains"):
        parse_authorization_details(raw)

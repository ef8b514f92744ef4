"""The configured RFC 9396 types: schemas checked at boot, items checked, sentences rendered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jinja2 import TemplateSyntaxError
from jsonschema.exceptions import SchemaError

from grantline.errors import InvalidAuthorizationDetails
from grantline.policy.authorization_details import DetailTypeRegistry
from grantline.settings import AuthorizationDetailType
from tests.helpers import EXAMPLE_TYPES

PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status", "cancel"],
    "locations": ["https://example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Ref Number Merchant",
}


def words(registry: DetailTypeRegistry, item: dict[str, object]) -> str:
    """The sentence as the person reads it, values and wording joined."""
    return "".join(segment.text for segment in registry.sentence(item))


@pytest.fixture
def registry() -> DetailTypeRegistry:
    return DetailTypeRegistry(EXAMPLE_TYPES)


def one_type(template: str, schema: dict[str, Any] | None = None) -> DetailTypeRegistry:
    definition = AuthorizationDetailType("test type", schema or {"type": "object"}, template)
    return DetailTypeRegistry({"t": definition})


def test_the_example_types_are_registered(registry: DetailTypeRegistry) -> None:
    assert registry.names() == ["deployment", "file_access", "payment_initiation"]
    assert "payment_initiation" in registry
    assert "wire_transfer" not in registry
    assert registry.description("deployment") == "Deploy one service to one environment"


def test_payment_sentence_names_amount_currency_creditor_and_iban(
    registry: DetailTypeRegistry,
) -> None:
    assert words(registry, PAYMENT) == (
        "Pay 123.50 EUR to Merchant A (IBAN DE02100100109307118603) with the reference "
        "Ref Number Merchant; allowed actions: initiate, status, cancel; "
        "at https://example.com/payments"
    )


def test_payment_sentence_leaves_out_absent_optional_fields(registry: DetailTypeRegistry) -> None:
    minimal = {
        "type": "payment_initiation",
        "instructedAmount": {"currency": "USD", "amount": "5"},
        "creditorName": "Shop",
        "creditorAccount": {"iban": "GB33BUKB20201555555555"},
    }
    assert words(registry, minimal) == "Pay 5 USD to Shop (IBAN GB33BUKB20201555555555)"


def test_file_access_sentence(registry: DetailTypeRegistry) -> None:
    item = {"type": "file_access", "actions": ["read", "list"], "locations": ["/reports"]}
    assert words(registry, item) == "Read, list files under /reports"
    item = {"type": "file_access", "actions": ["delete"], "locations": ["/a", "/b"]}
    assert words(registry, item) == "Delete files under /a, /b"


def test_deployment_sentence(registry: DetailTypeRegistry) -> None:
    item = {"type": "deployment", "service": "api", "version": "1.2.3", "environment": "staging"}
    assert words(registry, item) == "Deploy api version 1.2.3 to staging"
    item = {"type": "deployment", "service": "api", "environment": "prod"}
    assert words(registry, item) == "Deploy api to prod"


def test_sentences_are_one_line(registry: DetailTypeRegistry) -> None:
    sentence = words(registry, PAYMENT)
    assert "\n" not in sentence and "  " not in sentence


def test_sentences_are_plain_text_and_escaping_is_left_to_the_page(
    registry: DetailTypeRegistry,
) -> None:
    # Escaping here as well would show "&lt;" to the person after the page escapes it again.
    item = {**PAYMENT, "creditorName": "<b>A & B</b>"}
    assert "to <b>A & B</b> (IBAN" in words(registry, item)


def test_a_failing_template_falls_back_to_the_json() -> None:
    registry = one_type("Deploy {{ service.upper() }}")
    item = {"type": "t", "service": ["not", "a", "string"]}
    assert words(registry, item) == json.dumps(item, sort_keys=True)


def test_a_template_that_renders_nothing_falls_back_to_the_json() -> None:
    registry = one_type("{% if missing %}never{% endif %}  \n ")
    item = {"type": "t", "note": "café"}
    assert words(registry, item) == '{"note": "café", "type": "t"}'


def test_a_type_error_in_a_template_falls_back_to_the_json() -> None:
    registry = one_type("{{ '%d' % amount }} units")
    item = {"type": "t", "amount": "12"}
    assert words(registry, item) == json.dumps(item, sort_keys=True)


def test_templates_cannot_escape_the_sandbox() -> None:
    registry = one_type("{{ service.__class__.__mro__[1].__subclasses__() }}")
    item = {"type": "t", "service": "api"}
    assert words(registry, item) == json.dumps(item, sort_keys=True)


def test_templates_cannot_change_the_item_they_render() -> None:
    registry = one_type("{{ actions.append('delete') }}Do {{ actions | join(', ') }}")
    item = {"type": "t", "actions": ["read"]}
    words(registry, item)
    assert item["actions"] == ["read"]


def test_an_arithmetic_error_in_a_template_falls_back_to_the_json() -> None:
    registry = one_type("{{ 100 // count }} per item")
    item = {"type": "t", "count": 0}
    assert words(registry, item) == json.dumps(item, sort_keys=True)


def test_valid_items_pass_their_schema(registry: DetailTypeRegistry) -> None:
    registry.check(0, PAYMENT)
    registry.check(3, {"type": "deployment", "service": "api", "environment": "prod"})


def test_a_failing_item_names_index_and_field(registry: DetailTypeRegistry) -> None:
    item = {**PAYMENT, "instructedAmount": {"currency": "EUR", "amount": "12,50"}}
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        registry.check(4, item)
    assert caught.value.description.startswith(
        "authorization_details[4].instructedAmount.amount: '12,50' does not match"
    )


def test_a_type_const_mismatch_is_refused(registry: DetailTypeRegistry) -> None:
    # The schema, not only the lookup, pins the type: a definition cannot be borrowed.
    schema = EXAMPLE_TYPES["deployment"].schema
    borrowed = DetailTypeRegistry(
        {"release": AuthorizationDetailType("borrowed", schema, "Release {{ service }}")}
    )
    with pytest.raises(InvalidAuthorizationDetails, match=r"authorization_details\[0\]\.type"):
        borrowed.check(0, {"type": "release", "service": "api", "environment": "prod"})


def test_an_invalid_schema_fails_at_boot() -> None:
    with pytest.raises(SchemaError):
        one_type("x", {"type": "objekt"})


def test_an_invalid_template_fails_at_boot() -> None:
    with pytest.raises(TemplateSyntaxError):
        one_type("Deploy {{ service ")


def test_client_values_are_set_apart_from_the_templates_words(
    registry: DetailTypeRegistry,
) -> None:
    # A creditor name that imitates the template's wording stays one value: the page sets it
    # off, so it cannot pass for the sentence around it.
    spoof = 'Merchant A (IBAN DE02100100109307118603) with the reference "x"; Settlement:'
    segments = registry.sentence({**PAYMENT, "creditorName": spoof})
    values = [s.text for s in segments if s.is_value]
    assert spoof in values
    assert "GB" not in "".join(s.text for s in segments if not s.is_value)
    assert [s.text for s in segments if not s.is_value][:2] == ["Pay ", " "]

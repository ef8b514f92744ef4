"""Audit redaction rules: keep, drop, hash (keyed) and mask:N, per type and dotted field."""

from __future__ import annotations

from typing import Any

import pytest

from grantline.audit.redaction import HASH_PREFIX, Redactor, parse_rule
from tests.conftest import SECRET_KEY

PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate"],
    "locations": ["https://bank.example/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "42.00"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Invoice 17",
}
POLICY = {
    "payment_initiation": {
        "creditorAccount.iban": "mask:4",
        "creditorName": "hash",
        "remittanceInformationUnstructured": "drop",
        "instructedAmount.amount": "keep",
    }
}


def redactor(secret: bytes = SECRET_KEY) -> Redactor:
    return Redactor(POLICY, secret)


def test_each_rule_applies_to_its_field() -> None:
    (item,) = redactor().details([PAYMENT])
    assert item["creditorAccount"] == {"iban": "*" * 18 + "8603"}
    assert item["creditorName"].startswith(HASH_PREFIX)
    assert len(item["creditorName"]) == len(HASH_PREFIX) + 64
    assert "remittanceInformationUnstructured" not in item
    assert item["instructedAmount"] == {"currency": "EUR", "amount": "42.00"}
    assert item["actions"] == ["initiate"]


def test_the_original_item_is_not_changed() -> None:
    before = repr(PAYMENT)
    redactor().details([PAYMENT])
    assert repr(PAYMENT) == before


def test_hashes_are_stable_under_one_secret_and_differ_under_another() -> None:
    first = redactor().item(PAYMENT)["creditorName"]
    assert redactor().item(PAYMENT)["creditorName"] == first
    assert redactor().hash_value("Merchant A") == first
    assert redactor(b"another instance secret, 32 bytes").item(PAYMENT)["creditorName"] != first


def test_types_without_rules_pass_through() -> None:
    files = {"type": "file_access", "actions": ["read"], "locations": ["/reports"]}
    assert redactor().details([files]) == [files]
    assert not Redactor({}, SECRET_KEY)
    assert redactor()


def test_a_rule_on_a_list_applies_to_each_element() -> None:
    rules = {"file_access": {"locations": "mask:3"}}
    item = Redactor(rules, SECRET_KEY).item(
        {"type": "file_access", "locations": ["/secret/plans", "/x"]}
    )
    assert item["locations"] == ["**********ans", "**"]


def test_a_value_no_longer_than_the_kept_tail_is_masked_whole() -> None:
    rules = {"t": {"pin": "mask:4", "n": "mask:2"}}
    assert Redactor(rules, SECRET_KEY).item({"type": "t", "pin": "1234", "n": 12345}) == {
        "type": "t",
        "pin": "****",
        "n": "***45",
    }


def test_missing_fields_and_paths_through_non_objects_are_left_alone() -> None:
    rules = {"t": {"a.b.c": "drop", "s.x": "hash"}}
    item = {"type": "t", "a": {"other": 1}, "s": "plain"}
    assert Redactor(rules, SECRET_KEY).item(item) == item


@pytest.mark.parametrize("rule", ["keep", "drop", "hash", "mask:0", "mask:4", "mask:64"])
def test_valid_rules_parse(rule: str) -> None:
    assert parse_rule(rule)[0] == rule.split(":")[0]


@pytest.mark.parametrize("rule", ["", "Mask:4", "mask:", "mask:-1", "mask:65", "mask:x", "erase"])
def test_unknown_rules_are_refused(rule: str) -> None:
    with pytest.raises(ValueError, match="unknown redaction rule"):
        parse_rule(rule)

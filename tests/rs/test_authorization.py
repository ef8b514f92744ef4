"""Does an action fit the granted ``authorization_details``? Each rule refused from the side of
an agent trying to do more than the person approved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from grantline.rs.authorization import Grant, Rule, location_within
from grantline.rs.errors import InsufficientAuthorizationDetails

#: RFC 9396 section 2's example, as ``grantline init`` configures the type.
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
    "locations": ["/files", "https://files.example/share/reports"],
    "actions": ["read", "list"],
    "identifier": "report-2026",
}
DEPLOYMENT: dict[str, Any] = {
    "type": "deployment",
    "service": "billing",
    "environment": "staging",
    "version": "1.4.2",
    "actions": ["deploy"],
}

GRANT = Grant([PAYMENT, FILES, DEPLOYMENT])


def refused(grant: Grant, type_: str, **facts: Any) -> InsufficientAuthorizationDetails:
    with pytest.raises(InsufficientAuthorizationDetails) as caught:
        grant.require(type=type_, **facts)
    error = caught.value
    assert error.error == "insufficient_authorization_details"
    assert error.status_code == 403
    assert error.body() == {
        "error": "insufficient_authorization_details",
        "error_description": error.description,
    }
    return error


# -- what fits ------------------------------------------------------------------------------


def test_a_payment_inside_the_grant_fits_and_returns_the_item() -> None:
    item = GRANT.require(
        type="payment_initiation",
        action="initiate",
        amount=Decimal("42.00"),
        currency="EUR",
        creditor_iban="DE02100100109307118603",
        creditor_name="Merchant A",
        location="https://example.com/payments/123",
    )
    assert item["instructedAmount"] == {"currency": "EUR", "amount": "123.50"}


def test_the_whole_granted_amount_fits_and_not_a_cent_more() -> None:
    assert GRANT.allows(type="payment_initiation", amount=Decimal("123.50"))
    assert GRANT.allows(type="payment_initiation", amount="123.5")
    assert not GRANT.allows(type="payment_initiation", amount=Decimal("123.51"))


def test_any_granted_item_of_the_type_may_fit() -> None:
    small = {**PAYMENT, "instructedAmount": {"currency": "USD", "amount": "10.00"}}
    grant = Grant([small, PAYMENT])
    item = grant.require(type="payment_initiation", amount=Decimal("100"), currency="EUR")
    assert item is grant.items[1]


def test_file_access_and_deployment_rules() -> None:
    assert GRANT.allows(type="file_access", action="list", location="/files/a/b.txt")
    assert GRANT.allows(type="file_access", identifier="report-2026", location="/files")
    assert GRANT.allows(
        type="deployment", action="deploy", service="billing", environment="staging"
    )
    assert GRANT.allows(type="deployment", version="1.4.2")


def test_a_type_without_rules_uses_top_level_fields() -> None:
    grant = Grant([{"type": "mail_send", "recipients": ["a@example.com"], "folder": "Outbox"}])
    assert grant.allows(type="mail_send", recipients="a@example.com", folder="Outbox")
    refused(grant, "mail_send", recipients="b@example.com")
    refused(grant, "mail_send", folder="Inbox")


def test_rules_are_data_an_application_can_extend() -> None:
    rules = {"mail_send": {"recipient": Rule.at("recipients", "member")}}
    grant = Grant([{"type": "mail_send", "recipients": ["a@example.com"]}], rules)
    assert grant.allows(type="mail_send", recipient="a@example.com")
    error = refused(grant, "mail_send", recipients="a@example.com")
    assert error.fact == "recipients"


# -- payment_initiation: each refusal --------------------------------------------------------


def test_amount_above_the_grant_is_refused() -> None:
    error = refused(GRANT, "payment_initiation", action="initiate", amount=Decimal("123.51"))
    assert error.fact == "amount"
    assert error.description == "amount exceeds the granted instructedAmount.amount."


def test_a_negative_amount_is_refused() -> None:
    error = refused(GRANT, "payment_initiation", amount=Decimal("-1000"))
    assert error.fact == "amount"


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), "1e2", "12,00", True])
def test_an_amount_that_is_not_a_plain_number_is_refused(amount: Any) -> None:
    assert refused(GRANT, "payment_initiation", amount=amount).fact == "amount"


def test_a_float_amount_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="never float"):
        GRANT.require(type="payment_initiation", amount=42.0)  # type: ignore[arg-type]


def test_a_granted_amount_given_as_a_float_fits_nothing() -> None:
    grant = Grant([{**PAYMENT, "instructedAmount": {"currency": "EUR", "amount": 123.5}}])
    assert refused(grant, "payment_initiation", amount=Decimal("1")).fact == "amount"


def test_another_currency_is_refused() -> None:
    error = refused(GRANT, "payment_initiation", amount=Decimal("10"), currency="USD")
    assert error.fact == "currency"
    assert "instructedAmount.currency" in error.description


def test_another_creditor_is_refused() -> None:
    assert (
        refused(GRANT, "payment_initiation", creditor_iban="GB33BUKB20201555555555").fact
        == "creditor_iban"
    )
    assert refused(GRANT, "payment_initiation", creditor_name="Merchant B").fact == (
        "creditor_name"
    )


def test_an_action_not_granted_is_refused() -> None:
    error = refused(GRANT, "payment_initiation", action="refund")
    assert error.fact == "action"
    assert error.description == "action is not among the granted actions."


def test_an_unknown_fact_is_refused() -> None:
    error = refused(GRANT, "payment_initiation", action="initiate", purpose="gift")
    assert error.fact == "purpose"
    assert error.description == "purpose is not a fact of payment_initiation items."


def test_a_fact_the_granted_item_does_not_specify_is_refused() -> None:
    no_locations = {k: v for k, v in PAYMENT.items() if k != "locations"}
    error = refused(Grant([no_locations]), "payment_initiation", location="https://example.com/")
    assert error.fact == "location"
    assert error.description == "The granted payment_initiation item does not specify locations."


def test_an_item_of_another_type_does_not_count() -> None:
    grant = Grant([FILES])
    error = refused(grant, "payment_initiation", action="initiate")
    assert error.fact is None
    assert error.description == "No payment_initiation authorization_details were granted."


def test_bool_and_int_are_not_confused() -> None:
    grant = Grant([{"type": "flags", "enabled": True, "count": 1}])
    refused(grant, "flags", enabled=1)
    refused(grant, "flags", count=True)
    assert grant.allows(type="flags", enabled=True, count=1)


def test_the_refusal_of_several_items_names_each_reason() -> None:
    usd = {**PAYMENT, "instructedAmount": {"currency": "USD", "amount": "500.00"}}
    error = refused(Grant([PAYMENT, usd]), "payment_initiation", amount="200", currency="EUR")
    assert error.fact == "amount"
    assert "None of the 2 granted payment_initiation items fits" in error.description
    assert "amount exceeds" in error.description
    assert "currency differs" in error.description


# -- locations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "https://example.com/payments",
        "https://example.com/payments/",
        "https://example.com/payments/123",
        "HTTPS://EXAMPLE.COM:443/payments/123",
        "https://example.com/payments/a%20b",
    ],
)
def test_locations_inside_the_grant_fit(location: str) -> None:
    assert location_within(location, "https://example.com/payments")


@pytest.mark.parametrize(
    "location",
    [
        "https://example.com/payments2",  # a prefix, not a segment boundary
        "https://example.com/payment",
        "https://example.com/",
        "https://example.com/payments/../admin",
        "https://example.com/payments/%2e%2e/admin",
        "https://example.com/payments/%2E%2E",
        "https://example.com/payments/./x",
        "https://example.com/payments%2fadmin",
        "https://example.com/payments/x%2F..%2Fadmin",
        "https://example.com/payments/%252e%252e/admin",  # double encoding
        "https://example.com/payments\\..\\admin",
        "https://example.com/payments//x",
        "https://example.com@evil.example/payments",
        "https://user:pw@example.com/payments",
        "https://evil.example/payments",
        "https://example.com.evil.example/payments",
        "http://example.com/payments",
        "https://example.com:8443/payments",
        "https://example.com/payments?to=evil",
        "https://example.com/payments#x",
        "//example.com/payments",
        "https:/payments",
        "/payments",
        "https://example.com/payments/\u0000",
        "https://example.com/payments/ x",
        "https://example.com:99999/payments",
        "",
    ],
)
def test_locations_outside_the_grant_are_refused(location: str) -> None:
    assert not location_within(location, "https://example.com/payments")
    error = refused(GRANT, "payment_initiation", location=location)
    assert error.fact == "location"


@pytest.mark.parametrize(
    ("location", "fits"),
    [
        ("/files", True),
        ("/files/a.txt", True),
        ("/files/sub/dir/", True),
        ("/files2", False),
        ("/files2/a.txt", False),
        ("/file", False),
        ("/files/../etc/passwd", False),
        ("/files/%2e%2e/etc", False),
        ("/files/..%2fetc", False),
        ("files/a.txt", False),
        ("/", False),
        ("https://files.example/share/reports/q1.pdf", True),
        ("https://files.example/share/reports2/q1.pdf", False),
        ("https://files.example/share", False),
    ],
)
def test_file_locations_fit_only_at_a_segment_boundary(location: str, fits: bool) -> None:
    assert GRANT.allows(type="file_access", location=location) is fits


def test_a_granted_location_that_is_itself_ambiguous_covers_nothing() -> None:
    assert not location_within("/files/x", "/files/../files")
    assert not location_within("/a/x", "/a/%2e%2e")

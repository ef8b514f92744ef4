"""RFC 8707 resource indicators: parsing repeated values and refusing what is not allowed."""

from __future__ import annotations

import pytest

from grantline.errors import InvalidRequest, InvalidTarget
from grantline.protocol.params import parse_params, split_values
from grantline.protocol.resource import MAX_RESOURCES, parse_resources

PAYMENTS = "https://api.example/payments"
FILES = "https://api.example/files"
ALLOWED = (PAYMENTS, FILES)


def target_refusal(joined: str | None, allowed: tuple[str, ...] = ALLOWED) -> str:
    with pytest.raises(InvalidTarget) as caught:
        parse_resources(joined, allowed)
    assert caught.value.error == "invalid_target"
    assert caught.value.http_status == 400
    return caught.value.description


def test_repeated_resource_parameters_are_kept_in_order() -> None:
    params = parse_params(
        "resource=https%3A%2F%2Fapi.example%2Fpayments&scope=a&resource=https%3A%2F%2Fapi.example%2Ffiles"
    )
    assert params["resource"] == f"{PAYMENTS}\x1f{FILES}"
    assert params["scope"] == "a"
    assert split_values(params["resource"]) == (PAYMENTS, FILES)


def test_an_empty_repeated_value_is_dropped() -> None:
    params = parse_params("resource=&resource=https%3A%2F%2Fapi.example%2Ffiles&resource=")
    assert params["resource"] == FILES


def test_only_resource_may_repeat() -> None:
    with pytest.raises(InvalidRequest, match="scope parameter is repeated"):
        parse_params("scope=a&scope=b")


def test_the_separator_cannot_be_smuggled_into_one_value() -> None:
    # Repeats are joined with U+001F, so a value carrying one would split into two resources.
    with pytest.raises(InvalidRequest, match="control character"):
        parse_params("resource=https%3A%2F%2Fapi.example%2Fpayments%1Fhttps%3A%2F%2Fevil.example")


def test_a_newline_inside_one_value_stays_one_invalid_resource() -> None:
    params = parse_params(
        "resource=https%3A%2F%2Fapi.example%2Fpayments%0Ahttps%3A%2F%2Fevil.example"
    )
    with pytest.raises(InvalidTarget):
        parse_resources(params["resource"], ALLOWED)


def test_no_resource_means_none() -> None:
    assert parse_resources(None, ALLOWED) == ()
    assert parse_resources(None, ()) == ()


def test_allowed_resources_are_returned_once_each() -> None:
    assert parse_resources(f"{FILES}\x1f{PAYMENTS}\x1f{FILES}", ALLOWED) == (FILES, PAYMENTS)


def test_a_resource_not_registered_for_the_client_is_refused() -> None:
    description = target_refusal(f"{PAYMENTS}\x1fhttps://api.example/admin")
    assert description == "This client may not request the resource 'https://api.example/admin'."


def test_a_client_without_resources_may_name_none() -> None:
    description = target_refusal(PAYMENTS, allowed=())
    assert "may not request the resource" in description


@pytest.mark.parametrize(
    "value",
    [
        "/payments",
        "api.example/payments",
        "//api.example/payments",
        "https://api.example/payments#frag",
        "https://api.example/payments#",
        "https:",
    ],
)
def test_relative_or_fragment_uris_are_refused_even_if_registered(value: str) -> None:
    # Registering a bad value (by a direct database write) must not make it requestable.
    description = target_refusal(value, allowed=(*ALLOWED, value))
    assert description == f"resource {value!r} is not an absolute URI without a fragment."


def test_whitespace_inside_a_resource_is_refused() -> None:
    value = "https://api.example/pay ments"
    assert target_refusal(value, allowed=(value,)) == (
        f"resource {value!r} is not an absolute URI without a fragment."
    )


def test_http_resource_without_a_host_is_refused() -> None:
    value = "https:///payments"
    assert target_refusal(value, allowed=(value,)) == (
        f"resource {value!r} is not an absolute URI without a fragment."
    )


def test_prefix_of_an_allowed_resource_is_not_allowed() -> None:
    target_refusal("https://api.example/payments/../admin")
    target_refusal("https://api.example/payment")
    target_refusal("HTTPS://API.EXAMPLE/payments")


def test_at_most_max_resources() -> None:
    many = tuple(f"https://api.example/r{i}" for i in range(MAX_RESOURCES + 1))
    assert len(parse_resources("\x1f".join(many[:MAX_RESOURCES]), many)) == MAX_RESOURCES
    assert target_refusal("\x1f".join(many), allowed=many) == (
        f"At most {MAX_RESOURCES} resources may be requested."
    )

"""Properties of parsing and validating authorization_details (RFC 9396)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidAuthorizationDetails
from grantline.policy.authorization_details import DetailTypeRegistry
from grantline.protocol.rar import (
    MAX_DEPTH,
    MAX_DETAILS,
    MAX_LENGTH,
    parse_authorization_details,
    validate_authorization_details,
)
from tests.helpers import EXAMPLE_TYPES
from tests.strategies import PROPERTY, hostile_text, json_values

TYPES = DetailTypeRegistry(EXAMPLE_TYPES)

_ITEM = st.dictionaries(
    st.sampled_from(
        ["type", "actions", "locations", "identifier", "service", "environment", "x"]
        + ["instructedAmount", "creditorName", "creditorAccount", "datatypes"]
    ),
    st.one_of(
        st.sampled_from(["deployment", "file_access", "payment_initiation", "unknown"]),
        json_values(6),
    ),
    max_size=6,
)
_DETAILS = st.one_of(
    hostile_text(100),
    json_values().map(json.dumps),
    st.lists(_ITEM, max_size=MAX_DETAILS + 2).map(json.dumps),
)


@PROPERTY
@given(_DETAILS)
def test_any_text_is_details_or_invalid_authorization_details(raw: str) -> None:
    try:
        details = parse_authorization_details(raw)
    except InvalidAuthorizationDetails as exc:
        assert exc.http_status == 400
        return
    assert 1 <= len(details) <= MAX_DETAILS
    assert len(raw) <= MAX_LENGTH
    assert all(isinstance(item, dict) and isinstance(item["type"], str) for item in details)


@PROPERTY
@given(st.lists(_ITEM, min_size=1, max_size=4))
def test_any_shaped_item_is_valid_for_its_type_or_refused(items: list[dict[str, object]]) -> None:
    try:
        details = parse_authorization_details(json.dumps(items))
        validate_authorization_details(details, TYPES, ())
    except InvalidAuthorizationDetails as exc:
        assert exc.description.startswith("authorization_details")


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        pytest.param(
            json.dumps([{"type": "file_access", "actions": ["read"], "locations": ["x" * 9000]}]),
            f"authorization_details is longer than {MAX_LENGTH} characters.",
            id="too-long",
        ),
        pytest.param(
            json.dumps([{"type": "deployment"}] * (MAX_DETAILS + 1)),
            f"authorization_details has more than {MAX_DETAILS} items.",
            id="too-many",
        ),
        pytest.param(
            '[{"type": "deployment", "x": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}]",
            "authorization_details is nested too deeply.",
            id="too-deep",
        ),
    ],
)
def test_oversize_details_are_refused(raw: str, description: str) -> None:
    with pytest.raises(InvalidAuthorizationDetails) as refused:
        parse_authorization_details(raw)
    assert refused.value.description == description

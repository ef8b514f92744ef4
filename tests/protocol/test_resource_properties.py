"""Properties of resource indicators (RFC 8707)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidTarget
from grantline.protocol.params import VALUE_SEPARATOR
from grantline.protocol.resource import MAX_RESOURCES, check_resource_uri, parse_resources
from tests.strategies import PROPERTY, uri_like

ALLOWED = ("https://api.example/", "urn:example:ledger", "https://files.example/v1")


@PROPERTY
@given(st.lists(st.one_of(st.sampled_from(ALLOWED), uri_like()), max_size=20))
def test_any_resources_are_allowed_uris_or_invalid_target(values: list[str]) -> None:
    joined = VALUE_SEPARATOR.join(values) if values else None
    try:
        resources = parse_resources(joined, ALLOWED)
    except InvalidTarget as exc:
        assert exc.http_status == 400
        return
    assert len(resources) <= MAX_RESOURCES
    assert all(r in ALLOWED for r in resources)


@PROPERTY
@given(uri_like())
def test_any_uri_is_checked_or_invalid_target(value: str) -> None:
    with contextlib.suppress(InvalidTarget):
        assert check_resource_uri(value) == value


def test_an_unbalanced_bracket_is_invalid_target() -> None:
    with pytest.raises(InvalidTarget, match="not an absolute URI"):
        check_resource_uri("https://[::1/api")


def test_too_many_resources_are_refused_before_any_is_checked() -> None:
    many = VALUE_SEPARATOR.join(f"not a uri {i}" for i in range(MAX_RESOURCES + 1))
    with pytest.raises(InvalidTarget, match=f"At most {MAX_RESOURCES}"):
        parse_resources(many, ALLOWED)

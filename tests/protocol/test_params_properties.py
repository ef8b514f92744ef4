"""Properties of the strict form/query parser (RFC 6749 3.1) on arbitrary input."""

from __future__ import annotations

from urllib.parse import quote_plus

from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidRequest
from grantline.protocol.params import (
    MAX_PARAMETERS,
    REPEATABLE,
    VALUE_SEPARATOR,
    is_clean_value,
    parse_params,
    split_values,
)
from tests.strategies import PROPERTY, form_bodies, hostile_text

_NAMES = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
_CLEAN = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=30)


@PROPERTY
@given(st.one_of(form_bodies(), hostile_text(200)))
def test_any_input_is_parameters_or_invalid_request(raw: bytes | str) -> None:
    try:
        params = parse_params(raw)
    except InvalidRequest as exc:
        assert exc.error == "invalid_request"
        assert exc.http_status == 400
        return
    assert len(params) <= MAX_PARAMETERS
    for name, value in params.items():
        assert value, "empty values are dropped"
        assert is_clean_value(name) and is_clean_value(value.replace(VALUE_SEPARATOR, ""))
        if name not in REPEATABLE:
            assert VALUE_SEPARATOR not in value


@PROPERTY
@given(st.dictionaries(_NAMES.filter(lambda n: n not in REPEATABLE), _CLEAN, max_size=10))
def test_encoded_parameters_come_back_unchanged(params: dict[str, str]) -> None:
    body = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in params.items())
    parsed = parse_params(body.encode("ascii"))
    assert parsed == {k: v for k, v in params.items() if v}


@PROPERTY
@given(_NAMES.filter(lambda n: n not in REPEATABLE), _CLEAN, _CLEAN)
def test_a_repeated_parameter_is_always_refused(name: str, first: str, second: str) -> None:
    body = f"{name}={quote_plus(first)}&{name}={quote_plus(second)}"
    try:
        parse_params(body)
    except InvalidRequest as exc:
        assert "repeated" in exc.description
    else:
        raise AssertionError("a repeated parameter was accepted")


@PROPERTY
@given(st.lists(_CLEAN.filter(bool), min_size=1, max_size=MAX_PARAMETERS))
def test_resource_values_keep_their_order(values: list[str]) -> None:
    body = "&".join(f"resource={quote_plus(v)}" for v in values)
    assert split_values(parse_params(body).get("resource")) == tuple(values)

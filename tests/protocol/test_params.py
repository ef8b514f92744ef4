from __future__ import annotations

import pytest

from grantline.errors import InvalidRequest
from grantline.protocol.params import MAX_PARAMETERS, parse_params


def test_decodes_form_encoding() -> None:
    assert parse_params(b"a=1&b=x+y&c=%2F%3D") == {"a": "1", "b": "x y", "c": "/="}


def test_empty_values_are_omitted() -> None:
    # RFC 6749 3.1: parameters sent without a value are treated as omitted.
    assert parse_params(b"a=&b=2&c") == {"b": "2"}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"scope=a&scope=b", id="repeated"),
        pytest.param(b"scope=&scope=b", id="repeated-one-empty"),
        pytest.param(b"s%63ope=a&scope=b", id="repeated-after-decoding"),
    ],
)
def test_repeated_parameters_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="repeated"):
        parse_params(raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"a=%ff", id="invalid-utf8"),
        pytest.param("a=\u00e9".encode(), id="raw-non-ascii"),
        pytest.param(b"a=%00", id="nul"),
        pytest.param(b"a=x%1Fy", id="unit-separator"),
        pytest.param(b"a=x%7Fy", id="delete"),
    ],
)
def test_malformed_encoding_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_params(raw)


def test_too_many_parameters_are_refused() -> None:
    raw = "&".join(f"p{i}=1" for i in range(MAX_PARAMETERS + 1)).encode()
    with pytest.raises(InvalidRequest, match="too many"):
        parse_params(raw)


def test_utf8_values_survive() -> None:
    assert parse_params(b"state=%C3%A9t%C3%A9") == {"state": "\u00e9t\u00e9"}


def test_query_strings_and_empty_input() -> None:
    assert parse_params("") == {}
    assert parse_params(b"") == {}
    assert parse_params("a=1&&b=2") == {"a": "1", "b": "2"}


def test_json_whitespace_is_allowed_in_values() -> None:
    assert parse_params(b"authorization_details=%5B%0A%09%7B%7D%0D%0A%5D") == {
        "authorization_details": "[\n\t{}\r\n]"
    }

"""Strict parsing of OAuth parameters from form bodies and query strings.

RFC 6749 section 3.1: "Request and response parameters MUST NOT be included more than once"
and "Parameters sent without a value MUST be treated as if they were omitted from the request."
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from grantline.errors import InvalidRequest

__all__ = [
    "MAX_PARAMETERS",
    "REPEATABLE",
    "VALUE_SEPARATOR",
    "is_clean_value",
    "parse_params",
    "split_values",
]

#: More distinct parameters than any OAuth request needs; bounds the work an attacker can cause.
MAX_PARAMETERS = 64
#: RFC 8707 section 2: "Multiple resource parameters MAY be used".
REPEATABLE = frozenset({"resource"})
#: Repeated values are joined with the unit separator: it is refused inside values, so the join
#: is unambiguous and the parameters stay a plain ``dict[str, str]``.
VALUE_SEPARATOR = "\x1f"
#: JSON values (``authorization_details``) may be pretty-printed; other control characters are
#: never legitimate and are refused.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def split_values(joined: str | None) -> tuple[str, ...]:
    """The values of a repeatable parameter, in the order they were sent."""
    return () if joined is None else tuple(joined.split(VALUE_SEPARATOR))


def parse_params(raw: bytes | str) -> dict[str, str]:
    """Decode ``application/x-www-form-urlencoded`` data into a parameter dict.

    Refuses duplicates (other than of ``REPEATABLE`` parameters), invalid UTF-8 and control
    characters with ``invalid_request``, and drops parameters with an empty value.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequest("The request must be form-urlencoded ASCII.") from None
    else:
        text = raw
    params: dict[str, str] = {}
    seen: set[str] = set()
    if not text:
        return params
    pairs = text.split("&")
    if len(pairs) > MAX_PARAMETERS:
        raise InvalidRequest("The request has too many parameters.")
    # Raw control characters are refused in one pass over the whole text; only escaped pairs
    # are decoded and checked one by one.
    if not is_clean_value(text):
        raise InvalidRequest("A parameter contains a control character.")
    for pair in pairs:
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name = _decode(name)
            value = _decode(value)
        if name in REPEATABLE:
            if value:
                previous = params.get(name)
                params[name] = value if previous is None else previous + VALUE_SEPARATOR + value
            continue
        if name in seen:
            raise InvalidRequest(f"The {name} parameter is repeated.")
        seen.add(name)
        if value:
            params[name] = value
    return params


def _decode(component: str) -> str:
    try:
        decoded = unquote_plus(component, errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("A parameter is not valid UTF-8.") from None
    if not is_clean_value(decoded):
        raise InvalidRequest("A parameter contains a control character.")
    return decoded


def is_clean_value(value: str) -> bool:
    """No control characters but the whitespace JSON may contain."""
    return _CONTROL.search(value) is None

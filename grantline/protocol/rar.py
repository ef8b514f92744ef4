"""Rich Authorization Requests (RFC 9396): the checks common to every type.

Type-specific checks come from configuration (``grantline.policy.authorization_details``)
through the ``DetailTypes`` protocol, so this module stays pure.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from grantline.errors import InvalidAuthorizationDetails

__all__ = [
    "COMMON_ARRAY_FIELDS",
    "MAX_DEPTH",
    "MAX_DETAILS",
    "MAX_LENGTH",
    "DetailTypes",
    "check_details_subset",
    "parse_authorization_details",
    "validate_authorization_details",
]

#: RFC 9396 section 2.2 common data fields that hold arrays of strings.
COMMON_ARRAY_FIELDS = ("locations", "actions", "datatypes", "privileges")
MAX_DETAILS = 16
MAX_DEPTH = 16
#: The approved items travel inside every access token (RFC 9396 section 9.1), and a token
#: must fit in an Authorization header that proxies accept (often 8 KiB per line in all).
MAX_LENGTH = 8 * 1024
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

Detail = dict[str, Any]


class DetailTypes(Protocol):
    """The deployer's authorization details types."""

    def __contains__(self, type_: object) -> bool: ...

    def check(self, index: int, detail: Mapping[str, Any]) -> None:
        """Raise ``InvalidAuthorizationDetails`` naming the item and field that break the type's
        definition."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> Detail:
    result: Detail = {}
    for key, value in pairs:
        if key in result:
            raise InvalidAuthorizationDetails(f"authorization_details repeats the key {key!r}.")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidAuthorizationDetails(f"authorization_details contains {name}, which is not JSON.")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidAuthorizationDetails(
            f"authorization_details has a number out of range: {text[:20]}"
        )
    return value


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def parse_authorization_details(raw: str | None) -> tuple[Detail, ...]:
    """Parse and shape-check the ``authorization_details`` parameter (RFC 9396 section 2)."""
    if raw is None:
        return ()
    try:
        value = json.loads(
            raw,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
            parse_float=_finite,
        )
    except (ValueError, RecursionError):
        raise InvalidAuthorizationDetails("authorization_details is not valid JSON.") from None
    # Checked once the text is known to be JSON, so that garbage is named as such; the body
    # limit already bounds what parsing costs.
    if len(raw) > MAX_LENGTH:
        raise InvalidAuthorizationDetails(
            f"authorization_details is longer than {MAX_LENGTH} characters."
        )
    if not isinstance(value, list):
        raise InvalidAuthorizationDetails("authorization_details must be a JSON array.")
    if not value:
        raise InvalidAuthorizationDetails("authorization_details must not be empty.")
    if len(value) > MAX_DETAILS:
        raise InvalidAuthorizationDetails(
            f"authorization_details has more than {MAX_DETAILS} items."
        )
    if _depth(value) > MAX_DEPTH:
        raise InvalidAuthorizationDetails("authorization_details is nested too deeply.")
    for index, item in enumerate(value):
        _check_common(index, item)
    return tuple(value)


def _unsafe_text(value: Any) -> bool:
    """True if any key or string holds a control, format or lone surrogate character: bidi
    overrides and zero-width characters can make a consent sentence read as something else,
    and a lone surrogate cannot even be stored."""
    if isinstance(value, str):
        return any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in value)
    if isinstance(value, dict):
        return any(_unsafe_text(k) or _unsafe_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unsafe_text(v) for v in value)
    return False


def _check_common(index: int, item: Any) -> None:
    where = f"authorization_details[{index}]"
    if not isinstance(item, dict):
        raise InvalidAuthorizationDetails(f"{where} must be a JSON object.")
    if _unsafe_text(item):
        raise InvalidAuthorizationDetails(
            f"{where} contains a control, format or unpaired surrogate character."
        )
    type_ = item.get("type")
    if not isinstance(type_, str) or not type_:
        raise InvalidAuthorizationDetails(f"{where}.type is required and must be a string.")
    for field in COMMON_ARRAY_FIELDS:
        if field in item:
            values = item[field]
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, str) and v for v in values)
            ):
                raise InvalidAuthorizationDetails(
                    f"{where}.{field} must be a non-empty array of strings."
                )
    if "identifier" in item and not isinstance(item["identifier"], str):
        raise InvalidAuthorizationDetails(f"{where}.identifier must be a string.")


def validate_authorization_details(
    details: tuple[Detail, ...], types: DetailTypes, allowed: Collection[str]
) -> None:
    """Each item's type must be configured, allowed for the client (RFC 9396 section 10:
    ``authorization_details_types``; empty means every type), and valid for its definition."""
    for index, item in enumerate(details):
        type_ = item["type"]
        if type_ not in types:
            raise InvalidAuthorizationDetails(
                f"authorization_details[{index}].type {type_!r} is unknown."
            )
        if allowed and type_ not in allowed:
            raise InvalidAuthorizationDetails(
                f"authorization_details[{index}].type {type_!r} is not allowed for this client."
            )
        types.check(index, item)


def check_details_subset(requested: tuple[Detail, ...], granted: tuple[Detail, ...]) -> None:
    """At the token endpoint a client may ask for some of the granted items, never others
    (RFC 9396 section 6)."""
    for index, item in enumerate(requested):
        if item not in granted:
            raise InvalidAuthorizationDetails(f"authorization_details[{index}] was not granted.")

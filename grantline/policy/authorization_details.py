"""The deployer's authorization details types: a JSON Schema and a sentence template each.

Schemas are checked with ``jsonschema`` (Draft 2020-12) when the server starts, so a broken
configuration fails at boot rather than on a person's consent page. Templates render in Jinja2's
immutable sandbox, to plain text; the consent page escapes that text like any other value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from jinja2 import ChainableUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from grantline.errors import InvalidAuthorizationDetails
from grantline.settings import AuthorizationDetailType

__all__ = ["DetailTypeRegistry", "Segment", "Sentence"]

_WHITESPACE = re.compile(r"\s+")
_VALUE_START, _VALUE_END = "\x02", "\x03"
_MARKERS = re.compile("[\x02\x03]")


class Segment(NamedTuple):
    text: str
    is_value: bool


Sentence = tuple[Segment, ...]
_MAX_MESSAGE = 200


class DetailTypeRegistry:
    """Implements ``grantline.protocol.rar.DetailTypes`` for the configured types."""

    def __init__(self, types: Mapping[str, AuthorizationDetailType]) -> None:
        env = ImmutableSandboxedEnvironment(
            autoescape=False, undefined=ChainableUndefined, finalize=_mark
        )
        self._types = dict(types)
        self._validators: dict[str, Draft202012Validator] = {}
        self._templates = {}
        for name, definition in types.items():
            Draft202012Validator.check_schema(definition.schema)
            self._validators[name] = Draft202012Validator(definition.schema)
            self._templates[name] = env.from_string(definition.template)

    def __contains__(self, type_: object) -> bool:
        return type_ in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def description(self, type_: str) -> str:
        return self._types[type_].description

    def check(self, index: int, detail: Mapping[str, Any]) -> None:
        error = best_match(self._validators[detail["type"]].iter_errors(detail))
        if error is None:
            return
        field = ".".join(str(p) for p in error.absolute_path)
        where = f"authorization_details[{index}]" + (f".{field}" if field else "")
        message = error.message
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE] + "..."
        raise InvalidAuthorizationDetails(f"{where}: {message}")

    def sentence(self, detail: Mapping[str, Any]) -> Sentence:
        """One sentence for the consent page, as segments: the template's own words, and the
        values that came from the client, kept apart so the page can set them off and a value
        cannot pass for the template's wording. A template that cannot render this item falls
        back to the raw JSON, so the person is never shown less than was asked."""
        try:
            text = self._templates[detail["type"]].render(**detail)
        except Exception:
            # A deployer's template meets client-chosen data: any failure in it (undefined
            # names, arithmetic on strings, division by zero) must fall back, not fail the page.
            text = ""
        segments = _segments(text)
        if not segments:
            return (Segment(json.dumps(detail, sort_keys=True, ensure_ascii=False), False),)
        return segments


def _mark(value: Any) -> str:
    """Jinja2 ``finalize``: every ``{{ expression }}`` comes out between markers. The markers
    are control characters, which item values may not contain (``protocol.rar``)."""
    if value is None or isinstance(value, Undefined):
        return ""
    text = str(value)
    return f"{_VALUE_START}{text}{_VALUE_END}" if text else ""


def _segments(rendered: str) -> Sentence:
    parts = [
        Segment(_WHITESPACE.sub(" ", part), i % 2 == 1)
        for i, part in enumerate(_MARKERS.split(rendered))
    ]
    if parts:
        parts[0] = Segment(parts[0].text.lstrip(), parts[0].is_value)
        parts[-1] = Segment(parts[-1].text.rstrip(), parts[-1].is_value)
    segments = tuple(p for p in parts if p.text)
    return segments if any(p.text.strip() for p in segments) else ()

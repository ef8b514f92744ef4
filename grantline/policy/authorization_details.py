"""The deployer's authorization details types: a JSON Schema and a sentence template each.

Schemas are checked with ``jsonschema`` (Draft 2020-12) when the server starts, so a broken
configuration fails at boot rather than on a person's consent page. Templates render in Jinja2's
immutable sandbox, to plain text; the consent page escapes that text like any other value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from grantline.errors import InvalidAuthorizationDetails
from grantline.settings import AuthorizationDetailType

__all__ = ["DetailTypeRegistry"]

_WHITESPACE = re.compile(r"\s+")
_MAX_MESSAGE = 200


class DetailTypeRegistry:
    """Implements ``grantline.protocol.rar.DetailTypes`` for the configured types."""

    def __init__(self, types: Mapping[str, AuthorizationDetailType]) -> None:
        env = ImmutableSandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
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

    def sentence(self, detail: Mapping[str, Any]) -> str:
        """One plain-text sentence for the consent page. A template that cannot render this
        item falls back to the raw JSON, so the person is never shown less than was asked."""
        try:
            text = self._templates[detail["type"]].render(**detail)
        except Exception:
            # A deployer's template meets client-chosen data: any failure in it (undefined
            # names, arithmetic on strings, division by zero) must fall back, not fail the page.
            text = ""
        text = _WHITESPACE.sub(" ", text).strip()
        return text or json.dumps(detail, sort_keys=True, ensure_ascii=False)

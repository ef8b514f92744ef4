"""Data minimization for the audit trail: per authorization_details type, per field, a rule.

``keep`` (the default), ``drop``, ``mask:N`` (all but the last N characters become ``*``) or
``hash`` (HMAC-SHA256 under a key derived from the instance secret, so equal values stay
comparable across events and someone holding the secret can test a candidate value, while a
copy of the log alone cannot brute-force a short IBAN). Rules apply to the copy of each item the
audit trail keeps, before it is stored; what the client and the person saw is not changed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["HASH_PREFIX", "Redactor", "parse_rule"]

HASH_PREFIX = "hmac-sha256:"


def parse_rule(rule: str) -> tuple[str, int]:
    """``(kind, n)`` for a rule's text; ``ValueError`` for anything else."""
    if rule in ("keep", "drop", "hash"):
        return rule, 0
    kind, _, count = rule.partition(":")
    if kind == "mask" and count.isdigit() and int(count) <= 64:
        return "mask", int(count)
    raise ValueError(f"unknown redaction rule {rule!r}: use keep, drop, hash or mask:N")


class Redactor:
    """Applies the configured rules; types without rules pass through unchanged."""

    def __init__(self, policies: Mapping[str, Mapping[str, str]], secret: bytes) -> None:
        self._policies = {
            type_: [(path.split("."), parse_rule(rule)) for path, rule in fields.items()]
            for type_, fields in policies.items()
            if fields
        }
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"grantline audit redaction v1"
        ).derive(secret)

    def __bool__(self) -> bool:
        return bool(self._policies)

    def details(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Redacted copies of RFC 9396 items."""
        return [self.item(item) for item in items]

    def item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        rules = self._policies.get(str(item.get("type")))
        if not rules:
            # Nothing to change: a shallow copy, no deep copy on the request path.
            return dict(item)
        copied = copy.deepcopy(dict(item))
        for path, rule in rules:
            self._apply(copied, path, rule)
        return copied

    def hash_value(self, value: Any) -> str:
        """What the ``hash`` rule stores for ``value``."""
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        mac = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return HASH_PREFIX + mac

    def _apply(self, node: Any, path: list[str], rule: tuple[str, int]) -> None:
        if isinstance(node, list):
            for element in node:
                self._apply(element, path, rule)
            return
        if not isinstance(node, dict) or path[0] not in node:
            return
        if len(path) > 1:
            self._apply(node[path[0]], path[1:], rule)
            return
        kind, keep = rule
        if kind == "drop":
            del node[path[0]]
        elif kind != "keep":
            node[path[0]] = self._redact_value(node[path[0]], kind, keep)

    def _redact_value(self, value: Any, kind: str, keep: int) -> Any:
        if isinstance(value, list):
            return [self._redact_value(v, kind, keep) for v in value]
        if kind == "hash":
            return self.hash_value(value)
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        # A value no longer than what would be kept is masked whole: keeping it all tells all.
        shown = text[-keep:] if 0 < keep < len(text) else ""
        return "*" * (len(text) - len(shown)) + shown

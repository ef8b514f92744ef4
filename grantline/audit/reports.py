"""Action reports from resource servers: the shape ``POST /actions`` accepts, checked without I/O.

A report says what a resource server did with an access token: which action, allowed or refused
and why. It becomes the last link of the grant's line in the audit trail, so it is checked as
strictly as any protocol message: bounded sizes, flat facts, no unknown members.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from grantline.errors import InvalidRequest

__all__ = ["ActionReport", "parse_report"]

_REPORT_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")
_FACT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_MEMBERS = {"report_id", "jti", "outcome", "at", "type", "action", "error", "reason", "resource"}
_MAX_FACTS = 32
_MAX_TEXT = 300
_MAX_FACT_TEXT = 512


@dataclass(frozen=True, slots=True)
class ActionReport:
    report_id: str
    jti: str
    allowed: bool
    at: int
    type: str | None
    action: dict[str, str | int | bool]
    error: str | None
    reason: str | None
    resource: str | None


def _printable(text: str) -> bool:
    """No control characters (a report ends up on a reviewer's terminal) and no lone
    surrogates (they cannot be stored)."""
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F or "\ud800" <= ch <= "\udfff" for ch in text)


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name} is required.")
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidRequest(f"{name} must be a string of 1 to {limit} characters.")
    if not _printable(value):
        raise InvalidRequest(f"{name} contains control characters or invalid Unicode.")
    return value


def _facts(value: Any) -> dict[str, str | int | bool]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > _MAX_FACTS:
        raise InvalidRequest(f"action must be an object of at most {_MAX_FACTS} facts.")
    facts: dict[str, str | int | bool] = {}
    for name, fact in value.items():
        if not _FACT_NAME.fullmatch(name):
            raise InvalidRequest("action fact names are letters, digits, '_', '.' and '-'.")
        # Numbers travel as strings (a Decimal amount must not pass through a float).
        small_int = isinstance(fact, int) and abs(fact) < 2**53
        short_text = isinstance(fact, str) and len(fact) <= _MAX_FACT_TEXT and _printable(fact)
        if not (small_int or short_text):
            raise InvalidRequest(
                f"action.{name} must be a string (at most {_MAX_FACT_TEXT} printable "
                "characters), an integer or a boolean."
            )
        facts[name] = fact
    return facts


def parse_report(raw: bytes) -> ActionReport:
    """The report in ``raw`` (JSON), or ``InvalidRequest`` naming what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidRequest("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    unknown = sorted(set(body) - _MEMBERS)
    if unknown:
        raise InvalidRequest(f"Unknown member {unknown[0]!r}.")
    report_id = _text(body, "report_id", 128, required=True)
    assert report_id is not None
    if not _REPORT_ID.fullmatch(report_id):
        raise InvalidRequest("report_id must be 16 to 128 of A-Z, a-z, 0-9, '_' and '-'.")
    outcome = body.get("outcome")
    if outcome not in ("allowed", "refused"):
        raise InvalidRequest('outcome must be "allowed" or "refused".')
    at = body.get("at")
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at < 2**42:
        raise InvalidRequest("at must be a time in seconds since the epoch.")
    jti = _text(body, "jti", 256, required=True)
    assert jti is not None
    return ActionReport(
        report_id=report_id,
        jti=jti,
        allowed=outcome == "allowed",
        at=at,
        type=_text(body, "type", 128),
        action=_facts(body.get("action")),
        error=_text(body, "error", 64),
        reason=_text(body, "reason", _MAX_TEXT),
        resource=_text(body, "resource", 2048),
    )

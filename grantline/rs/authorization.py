"""Does an action fit what the person approved? Pure functions over ``authorization_details``.

A resource server describes the action it is about to take as *facts*
(``action="initiate", amount=Decimal("42.00"), currency="EUR"``); rules, kept as data, say
for each authorization details type (RFC 9396 section 2) where in a granted item each fact is
checked and how. The action fits when some granted item of its type fits every fact.

Everything is strict: a fact the rules do not know, or that the granted item does not
specify, does not fit. Amounts are compared as ``Decimal``, never as floats; locations must
lie inside a granted location at a path-segment boundary, and anything ambiguous about a
location (dot segments, encoded slashes, userinfo, a query) makes it fit nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit

from grantline.rs.errors import InsufficientAuthorizationDetails, Scheme

__all__ = [
    "BUILTIN_RULES",
    "Comparison",
    "Decision",
    "Fact",
    "Grant",
    "Rule",
    "TypeRules",
    "location_within",
]

Fact = str | int | bool | Decimal
Comparison = Literal["equal", "member", "at_most", "within"]
COMPARISONS: tuple[str, ...] = get_args(Comparison)


@dataclass(frozen=True, slots=True)
class Rule:
    """Where a fact is checked in a granted item, and how."""

    path: tuple[str, ...]
    comparison: Comparison

    def __post_init__(self) -> None:
        if not self.path or not all(self.path):
            raise ValueError("a rule needs a non-empty path")
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison must be one of {', '.join(COMPARISONS)}")

    @classmethod
    def at(cls, path: str, comparison: Comparison) -> Rule:
        """``Rule.at("instructedAmount.amount", "at_most")``."""
        return cls(tuple(path.split(".")), comparison)

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


#: Fact name -> rule, for one type.
TypeRules = Mapping[str, Rule]


def _rules(**rules: tuple[str, Comparison]) -> TypeRules:
    return MappingProxyType({fact: Rule.at(*spec) for fact, spec in rules.items()})


#: The three types ``grantline init`` configures (grantline/config/grantline.toml).
BUILTIN_RULES: Mapping[str, TypeRules] = MappingProxyType(
    {
        "payment_initiation": _rules(
            action=("actions", "member"),
            amount=("instructedAmount.amount", "at_most"),
            currency=("instructedAmount.currency", "equal"),
            creditor_iban=("creditorAccount.iban", "equal"),
            creditor_name=("creditorName", "equal"),
            location=("locations", "within"),
        ),
        "file_access": _rules(
            action=("actions", "member"),
            location=("locations", "within"),
            identifier=("identifier", "equal"),
        ),
        "deployment": _rules(
            action=("actions", "member"),
            service=("service", "equal"),
            environment=("environment", "equal"),
            version=("version", "equal"),
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of checking one action against a grant."""

    allowed: bool
    type: str
    #: The granted item that fits, when allowed.
    item: Mapping[str, Any] | None = None
    #: The fact that did not fit (None when allowed, or when no item of the type was granted).
    fact: str | None = None
    reason: str = ""

    def error(self, scheme: Scheme = "Bearer") -> InsufficientAuthorizationDetails:
        """The refusal to send for this decision (challenging with ``scheme``)."""
        return InsufficientAuthorizationDetails(
            self.reason, type_=self.type, fact=self.fact, scheme=scheme
        )


class Grant:
    """The ``authorization_details`` of one access token, asked about concrete actions."""

    def __init__(
        self,
        authorization_details: Iterable[Mapping[str, Any]],
        rules: Mapping[str, TypeRules] | None = None,
        *,
        scheme: Scheme = "Bearer",
    ) -> None:
        self.items = tuple(authorization_details)
        self.rules: Mapping[str, TypeRules] = {**BUILTIN_RULES, **(rules or {})}
        self._scheme: Scheme = scheme

    def check(self, *, type: str, **facts: Fact) -> Decision:
        _check_fact_values(facts)
        items = [item for item in self.items if item.get("type") == type]
        if not items:
            return Decision(False, type, reason=f"No {type} authorization_details were granted.")
        rules = self.rules.get(type)
        if rules is not None:
            for fact in facts:
                if fact not in rules:
                    return Decision(
                        False, type, fact=fact, reason=f"{fact} is not a fact of {type} items."
                    )
        failures: list[tuple[str, str]] = []
        for item in items:
            failure = _first_failure(item, facts, rules)
            if failure is None:
                return Decision(True, type, item=item)
            failures.append(failure)
        return _refusal(type, failures)

    def allows(self, *, type: str, **facts: Fact) -> bool:
        return self.check(type=type, **facts).allowed

    def require(self, *, type: str, **facts: Fact) -> Mapping[str, Any]:
        """The granted item the action fits; ``InsufficientAuthorizationDetails`` if none."""
        decision = self.check(type=type, **facts)
        if not decision.allowed or decision.item is None:
            raise decision.error(self._scheme)
        return decision.item


def _refusal(type_: str, failures: list[tuple[str, str]]) -> Decision:
    reasons = list(dict.fromkeys(reason for _, reason in failures))
    if len(failures) == 1:
        reason = reasons[0]
    else:
        reason = f"None of the {len(failures)} granted {type_} items fits: " + " ".join(reasons)
    return Decision(False, type_, fact=failures[0][0], reason=reason)


def _check_fact_values(facts: Mapping[str, object]) -> None:
    for name, value in facts.items():
        if isinstance(value, float):
            raise TypeError(f"fact {name}: pass amounts as Decimal or str, never float")
        if not isinstance(value, (str, int, Decimal)):
            raise TypeError(f"fact {name}: expected str, int, bool or Decimal")


def _rule_for(fact: str, item: Mapping[str, Any], rules: TypeRules | None) -> Rule:
    if rules is not None:
        return rules[fact]
    # A type without rules: the fact names a top-level field, a list of allowed values or
    # the one allowed value.
    return Rule((fact,), "member" if isinstance(item.get(fact), list) else "equal")


_MISSING = object()


def _lookup(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = item
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _first_failure(
    item: Mapping[str, Any], facts: Mapping[str, Fact], rules: TypeRules | None
) -> tuple[str, str] | None:
    type_ = item.get("type")
    for fact, value in facts.items():
        rule = _rule_for(fact, item, rules)
        granted = _lookup(item, rule.path)
        if granted is _MISSING or granted is None:
            return fact, f"The granted {type_} item does not specify {rule.dotted}."
        if not _COMPARE[rule.comparison](value, granted):
            return fact, f"{fact} {_VERB[rule.comparison]} the granted {rule.dotted}."
    return None


# -- comparisons ------------------------------------------------------------------------------

_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


def _decimal(value: object) -> Decimal | None:
    """A finite Decimal from an int, a Decimal or decimal text; floats and junk give None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _equal(fact: object, granted: object) -> bool:
    # bool is an int in Python, and True == 1: keep the JSON types apart.
    if isinstance(fact, bool) or isinstance(granted, bool):
        return isinstance(fact, bool) and isinstance(granted, bool) and fact == granted
    if isinstance(fact, str) and isinstance(granted, str):
        return fact == granted
    if isinstance(fact, (int, Decimal)):
        # A Decimal fact may meet granted text ("123.50"); an int only an int or a Decimal.
        if isinstance(granted, str) and not isinstance(fact, Decimal):
            return False
        a, b = _decimal(fact), _decimal(granted)
        return a is not None and b is not None and a == b
    return False


def _member(fact: object, granted: object) -> bool:
    return isinstance(granted, list) and any(_equal(fact, g) for g in granted)


def _at_most(fact: object, granted: object) -> bool:
    # An amount is never negative: a "payment" of -1000 is not within a grant of 50.
    a, b = _decimal(fact), _decimal(granted)
    return a is not None and b is not None and Decimal(0) <= a <= b


def _within(fact: object, granted: object) -> bool:
    locations = [granted] if isinstance(granted, str) else granted
    if not isinstance(fact, str) or not isinstance(locations, list):
        return False
    return any(isinstance(g, str) and location_within(fact, g) for g in locations)


_COMPARE = {"equal": _equal, "member": _member, "at_most": _at_most, "within": _within}
_VERB = {
    "equal": "differs from",
    "member": "is not among",
    "at_most": "exceeds",
    "within": "is outside",
}

# -- locations --------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN_ENCODINGS = ("%2f", "%5c", "%00")
Origin = tuple[str, str, int | None]


def _parse_location(value: str) -> tuple[Origin | None, tuple[str, ...]] | None:
    """(origin, decoded path segments) of an absolute URL or an absolute path; None for
    anything that could be read two ways."""
    if not value or len(value) > 4096 or "\\" in value or "?" in value or "#" in value:
        return None
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    origin: Origin | None = None
    path = value
    if parts.scheme or parts.netloc:
        if not parts.scheme or not parts.netloc or "@" in parts.netloc or not parts.hostname:
            return None
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            return None
        origin = (scheme, parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme))
        path = parts.path or "/"
    if not path.startswith("/"):
        return None
    raw = path.split("/")[1:]
    segments: list[str] = []
    for index, segment in enumerate(raw):
        if any(bad in segment.lower() for bad in _FORBIDDEN_ENCODINGS):
            return None
        try:
            decoded = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            return None
        # Dot segments (RFC 3986 5.2.4) and double encoding ("%252e") are read differently
        # by different layers; "//" inside a path likewise.
        if decoded in (".", "..") or "%" in decoded or (not decoded and index < len(raw) - 1):
            return None
        segments.append(decoded)
    if segments and not segments[-1]:
        segments.pop()
    return origin, tuple(segments)


def location_within(location: str, granted: str) -> bool:
    """Whether ``location`` is ``granted`` or lies under it: same scheme, host and port, and
    the granted path a prefix of its path at a segment boundary (``/files`` covers
    ``/files/a`` but not ``/files2``)."""
    inner, outer = _parse_location(location), _parse_location(granted)
    if inner is None or outer is None or inner[0] != outer[0]:
        return False
    prefix = outer[1]
    return inner[1][: len(prefix)] == prefix

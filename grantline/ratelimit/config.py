"""What ``[rate_limits]`` in grantline.toml says: request budgets per endpoint, how often the
processes reconcile their counts, and the sign-in throttling policy.

Pure data and parsing: no I/O, no web framework.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENDPOINTS",
    "EndpointLimits",
    "Limit",
    "RateLimitSettings",
    "SignInPolicy",
    "parse_limit",
    "rate_limits_from_config",
]

#: The endpoints that have budgets; ``login`` is ``POST /interaction/{token}/login``.
ENDPOINTS = ("par", "token", "introspect", "login")

_UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_LIMIT = re.compile(r"\s*(\d+)\s*/\s*([a-z]+)\s*")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` requests per ``period`` seconds, all of which may come at once: a
    bucket of ``count`` tokens refilled evenly over ``period`` (GCRA, in microseconds)."""

    count: int
    period: int
    #: Microseconds one request costs: the time the bucket takes to refill one token.
    interval_us: int = field(init=False, repr=False, compare=False)
    #: How far ahead of the clock a key's theoretical arrival time may run.
    burst_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.count < 1 or self.period < 1:
            raise ValueError("a rate limit needs a count and a period of at least 1")
        # Worked out once: every request reads both, several times.
        interval = max(1, self.period * 1_000_000 // self.count)
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "burst_us", interval * self.count)

    def __str__(self) -> str:
        unit = {1: "s", 60: "min", 3600: "h"}.get(self.period)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.period}s"


def parse_limit(value: object) -> Limit | None:
    """``"600/min"`` (units s, min, h) to a ``Limit``; ``"off"`` (or false) to None."""
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    match = _LIMIT.fullmatch(value) if isinstance(value, str) else None
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f'a limit is "COUNT/s", "COUNT/min", "COUNT/h" or "off", not {value!r}')
    return Limit(int(match.group(1)), _UNITS[match.group(2)])


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    #: Counted after the client authenticated (checked, not counted, against the claimed
    #: client_id before), so nobody can spend another client's budget.
    per_client: Limit | None
    #: Counted for every request from the peer address, before anything else is done.
    per_address: Limit | None


def _default_endpoints() -> dict[str, EndpointLimits]:
    # Above what one node serves (about 3k pushes/s on two cores), so they cap one caller's
    # share of a cluster rather than a node's normal load; a deployment tightens them.
    back_channel = EndpointLimits(Limit(60_000, 60), Limit(60_000, 60))
    return {
        "par": back_channel,
        "token": back_channel,
        "introspect": EndpointLimits(Limit(120_000, 60), Limit(120_000, 60)),
        # Every sign-in POST costs an argon2id hash; failed ones are throttled separately.
        "login": EndpointLimits(Limit(6_000, 60), Limit(600, 60)),
    }


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    """Failed sign-ins, per account and per peer address (see README "Sign-in throttling")."""

    #: Failures of one account, from anywhere, before each attempt must wait.
    account_failures: int = 5
    #: The longest an account's wait grows to.
    account_max_delay: int = 300
    #: Failures from one address, for any account, before each attempt must wait.
    address_failures: int = 10
    #: The longest an address's wait grows to: longer than an account's, since an address
    #: failing across accounts is guessing, and a success from it clears its count.
    address_max_delay: int = 900
    #: The wait after the failure that reaches a threshold; it doubles with each further one.
    first_delay: int = 5
    #: A count is forgotten this long after its last failure.
    failure_window: int = 900
    #: An address a person signed in from stays exempt from their account's wait this long.
    known_address_lifetime: int = 30 * 24 * 3600

    def __post_init__(self) -> None:
        numbers = (
            self.account_failures,
            self.address_failures,
            self.first_delay,
            self.failure_window,
            self.known_address_lifetime,
        )
        if min(numbers) < 1:
            raise ValueError("sign-in throttling figures must be at least 1")
        if not self.first_delay <= min(self.account_max_delay, self.address_max_delay):
            raise ValueError("sign-in max delays must be at least first_delay")
        if max(self.account_max_delay, self.address_max_delay) > self.failure_window:
            raise ValueError("sign-in max delays must not exceed failure_window")

    def delay(self, failures: int, threshold: int, cap: int) -> int:
        """Seconds to wait after the last of ``failures``: none below ``threshold``, then
        ``first_delay`` doubling per failure up to ``cap``."""
        if failures < threshold:
            return 0
        return min(cap, self.first_delay << min(failures - threshold, 32))


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    enabled: bool = True
    #: Where processes share counts: None for the database, else a ``redis://`` URL.
    url: str | None = None
    #: Prefix of every Redis key, so several deployments can share one Redis.
    key_prefix: str = "grantline:"
    #: Each process counts locally and reconciles with the shared store this often; 0 makes
    #: every request consult the shared store (exact, and a database write per request).
    sync_interval_ms: int = 200
    endpoints: Mapping[str, EndpointLimits] = field(default_factory=_default_endpoints)
    sign_in: SignInPolicy = field(default_factory=SignInPolicy)

    def __post_init__(self) -> None:
        if not 0 <= self.sync_interval_ms <= 10_000:
            raise ValueError("rate_limits.sync_interval_ms must be between 0 and 10000")
        if self.url is not None and not self.url.startswith(_REDIS_SCHEMES):
            raise ValueError("rate_limit_url must be a redis://, rediss:// or unix:// URL")
        unknown = set(self.endpoints) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"rate_limits: unknown endpoint {sorted(unknown)[0]!r}")

    def for_endpoint(self, endpoint: str) -> EndpointLimits | None:
        return self.endpoints.get(endpoint) if self.enabled else None


def _endpoint_limits(name: str, table: object, default: EndpointLimits) -> EndpointLimits:
    if not isinstance(table, Mapping):
        raise ValueError(f"rate_limits.{name} must be a table of per_client and per_address")
    unknown = set(table) - {"per_client", "per_address"}
    if unknown:
        raise ValueError(f"rate_limits.{name}: unknown option {sorted(unknown)[0]!r}")
    try:
        return EndpointLimits(
            parse_limit(table["per_client"]) if "per_client" in table else default.per_client,
            parse_limit(table["per_address"]) if "per_address" in table else default.per_address,
        )
    except ValueError as exc:
        raise ValueError(f"rate_limits.{name}: {exc}") from None


def rate_limits_from_config(config: Mapping[str, Any]) -> RateLimitSettings:
    """``rate_limit_url`` and the ``[rate_limits]`` table (with ``[rate_limits.sign_in]``);
    anything left out keeps its default."""
    table = dict(config.get("rate_limits", {}))
    endpoints = _default_endpoints()
    for name in ENDPOINTS:
        if name in table:
            endpoints[name] = _endpoint_limits(name, table.pop(name), endpoints[name])
    sign_in_table = dict(table.pop("sign_in", {}))
    sign_in_names = set(SignInPolicy.__dataclass_fields__)
    unknown = set(sign_in_table) - sign_in_names
    if unknown:
        raise ValueError(f"rate_limits.sign_in: unknown option {sorted(unknown)[0]!r}")
    options: dict[str, Any] = {}
    for name, kind in (("enabled", bool), ("key_prefix", str), ("sync_interval_ms", int)):
        if name in table:
            options[name] = kind(table.pop(name))
    if table:
        raise ValueError(f"rate_limits: unknown option {sorted(table)[0]!r}")
    url = config.get("rate_limit_url")
    return RateLimitSettings(
        url=str(url) if url else None,
        endpoints=endpoints,
        sign_in=SignInPolicy(**{k: int(v) for k, v in sign_in_table.items()}),
        **options,
    )

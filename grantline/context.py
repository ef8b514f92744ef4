"""What every endpoint needs, built once in ``create_app``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from grantline.audit.redaction import Redactor
from grantline.client_keys import ClientKeys
from grantline.policy.authorization_details import DetailTypeRegistry
from grantline.ratelimit.limiter import RateLimiter
from grantline.settings import Settings
from grantline.storage import Store
from grantline.storage.client_cache import ClientCache
from grantline.tokens.digest import Digester

__all__ = ["Clock", "Context", "system_clock"]

Clock = Callable[[], int]


def system_clock() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: Store
    clock: Clock = system_clock
    client_keys: ClientKeys = field(default_factory=ClientKeys)
    #: Request budgets shared by every process (``grantline.ratelimit``); the default counts in
    #: this process only.
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    #: Client records, re-read whenever any client changed (RFC 9126 7.4).
    clients: ClientCache = field(default_factory=ClientCache)
    digester: Digester = field(init=False)
    detail_types: DetailTypeRegistry = field(init=False)
    #: What the audit trail keeps of authorization_details (per-type redaction rules).
    redactor: Redactor = field(init=False)
    #: Bounds concurrent password hashing (argon2id: CPU and 64 MiB each) in this process.
    password_checks: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digester", Digester(self.settings.secret_key))
        object.__setattr__(
            self, "detail_types", DetailTypeRegistry(self.settings.authorization_details_types)
        )
        object.__setattr__(self, "password_checks", asyncio.Semaphore(2))
        policies = {name: t.audit for name, t in self.settings.authorization_details_types.items()}
        object.__setattr__(self, "redactor", Redactor(policies, self.settings.secret_key))

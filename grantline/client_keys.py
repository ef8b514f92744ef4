"""Clients' public keys: inline ``jwks`` or fetched from ``jwks_uri``.

Fetched sets are cached in memory for ``ttl`` seconds (a bounded staleness a key rotation by
the client tolerates) and fetched again, at most every ``min_interval`` seconds, when a token
names a kid the cache does not have. Fetches have a timeout and a size limit and never follow
redirects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.jwk import KeySet

from grantline.models import Client
from grantline.protocol.jose import JoseFailure, public_key_from_jwk

__all__ = ["ClientKeys", "fetch_jwks", "parse_public_jwks"]

MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT = 5.0

Fetcher = Callable[[str], Awaitable[bytes]]


def parse_public_jwks(document: Any) -> KeySet:
    """A JWK Set of public keys only; anything else raises ``JoseFailure``."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JoseFailure("not a JWK Set")
    keys = [public_key_from_jwk(jwk) for jwk in document["keys"][:32]]
    if not keys:
        raise JoseFailure("the JWK Set is empty")
    return KeySet(keys)  # type: ignore[arg-type]


async def fetch_jwks(uri: str) -> bytes:
    async with (
        httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http,
        http.stream("GET", uri, headers={"accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise JoseFailure(f"jwks_uri answered {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise JoseFailure("jwks_uri document is too large")
        return bytes(body)


@dataclass
class _Cached:
    keys: KeySet
    kids: frozenset[str]
    fetched_at: float


class ClientKeys:
    """Resolves a client's keys; one instance per process."""

    def __init__(
        self,
        fetch: Fetcher = fetch_jwks,
        *,
        ttl: float = 300.0,
        min_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._min_interval = min_interval
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        #: When each jwks_uri was last tried, successful or not, for the refetch rate limit.
        self._attempted: dict[str, float] = {}

    async def keys_for(self, client: Client, kid: str | None) -> KeySet:
        """The client's keys, raising ``JoseFailure`` when it has none usable."""
        if client.jwks is not None:
            return parse_public_jwks(client.jwks)
        if client.jwks_uri is None:
            raise JoseFailure("the client has no registered keys")
        now = self._clock()
        uri = client.jwks_uri
        cached = self._cache.get(uri)
        fresh = cached is not None and now - cached.fetched_at < self._ttl
        knows_kid = cached is not None and (kid is None or kid in cached.kids)
        last_attempt = self._attempted.get(uri)
        may_refetch = last_attempt is None or now - last_attempt >= self._min_interval
        if cached is not None and (fresh or not may_refetch) and (knows_kid or not may_refetch):
            return cached.keys
        if not may_refetch:
            raise JoseFailure("jwks_uri failed recently; not fetching again yet")
        self._attempted[uri] = now
        try:
            document = json.loads(await self._fetch(client.jwks_uri))
        except (httpx.HTTPError, ValueError) as exc:
            if cached is not None:
                return cached.keys
            raise JoseFailure(f"jwks_uri could not be fetched ({type(exc).__name__})") from None
        keys = parse_public_jwks(document)
        kids = frozenset(k.kid for k in keys.keys if k.kid)
        self._cache[client.jwks_uri] = _Cached(keys, kids, now)
        return keys

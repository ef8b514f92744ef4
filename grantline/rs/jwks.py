"""The issuer's public signing keys (RFC 7517), fetched from its ``jwks_uri`` and cached.

The set is kept for ``ttl`` seconds and fetched again, at most every ``refetch_interval``
seconds, when a token names a kid it does not have: a key rotation at the authorization server
is picked up at once, while a flood of tokens with made-up kids costs it one fetch per
interval. When a fetch fails, the keys already known stay in use.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from grantline.protocol.jose import AnyKey, JoseFailure, public_key_from_jwk
from grantline.rs.discovery import AuthorizationServer
from grantline.rs.errors import InvalidToken, TemporarilyUnavailable
from grantline.rs.transport import UnusableAnswer, request_json

__all__ = ["IssuerKeys", "PublishedKey"]

log = logging.getLogger("grantline.rs")

MAX_KEYS = 64


@dataclass(frozen=True, slots=True)
class PublishedKey:
    key: AnyKey
    kid: str | None
    #: The JWK's ``alg``, when it names one: the key then verifies that algorithm only.
    alg: str | None


def _parse(document: object) -> list[PublishedKey]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise UnusableAnswer("not a JWK Set")
    keys = []
    for jwk in document["keys"][:MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        try:
            key = public_key_from_jwk(jwk)
        except JoseFailure:
            # Symmetric or private material in a JWKS is never trusted; the rest still is.
            log.warning("ignoring an unusable key (kid %r) in the issuer's JWKS", jwk.get("kid"))
            continue
        kid, alg = jwk.get("kid"), jwk.get("alg")
        keys.append(
            PublishedKey(
                key, kid if isinstance(kid, str) else None, alg if isinstance(alg, str) else None
            )
        )
    return keys


class IssuerKeys:
    def __init__(
        self,
        server: AuthorizationServer,
        http: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        refetch_interval: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._server = server
        self._http = http
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._monotonic = monotonic
        self._keys: list[PublishedKey] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        #: How many times the JWKS was fetched (successfully or not).
        self.fetches = 0

    async def key_for(self, kid: str | None, alg: str) -> AnyKey:
        """The key that verifies a token with this header; ``InvalidToken`` when the issuer
        has none, ``TemporarilyUnavailable`` when its keys could never be fetched."""
        found = self._fresh_match(kid, alg)
        if found is not None:
            return found
        async with self._lock:
            # Another request may have fetched while this one waited.
            found = self._fresh_match(kid, alg)
            if found is not None:
                return found
            now = self._monotonic()
            if self._attempted_at is None or now - self._attempted_at >= self._refetch_interval:
                self._attempted_at = now
                await self._fetch(now)
            elif self._keys is None:
                raise TemporarilyUnavailable("The issuer's keys cannot be fetched right now.")
            found = self._match(kid, alg)
        if found is None:
            raise InvalidToken(f"The issuer has no {alg} key with kid {kid!r}.")
        return found

    def _fresh_match(self, kid: str | None, alg: str) -> AnyKey | None:
        if self._keys is None or self._monotonic() - self._fetched_at >= self._ttl:
            return None
        return self._match(kid, alg)

    def _match(self, kid: str | None, alg: str) -> AnyKey | None:
        candidates = [
            k
            for k in self._keys or ()
            if (kid is None or k.kid == kid) and (k.alg is None or k.alg == alg)
        ]
        # Without a kid, only an unambiguous set says which key was meant.
        return candidates[0].key if len(candidates) == 1 else None

    async def _fetch(self, now: float) -> None:
        self.fetches += 1
        try:
            uri = await self._server.jwks_uri()
            keys = _parse(await request_json(self._http, "GET", uri))
        except (httpx.HTTPError, UnusableAnswer) as exc:
            log.warning("fetching the JWKS of %s failed: %s", self._server.issuer, exc)
            if self._keys is None:
                raise TemporarilyUnavailable(
                    "The issuer's keys cannot be fetched right now."
                ) from None
            return
        self._keys = keys
        self._fetched_at = now

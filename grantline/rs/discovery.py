"""The authorization server's metadata (RFC 8414), fetched once and kept."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from grantline.rs.errors import TemporarilyUnavailable
from grantline.rs.transport import UnusableAnswer, request_json

__all__ = ["METADATA_PATH", "AuthorizationServer"]

log = logging.getLogger("grantline.rs")

METADATA_PATH = "/.well-known/oauth-authorization-server"


class AuthorizationServer:
    """Where the issuer's keys and introspection endpoint are. Explicit URLs skip discovery.

    A failed discovery is not retried for ``retry_interval`` seconds, so that requests
    arriving while the authorization server is down do not each cost it a fetch.
    """

    def __init__(
        self,
        issuer: str,
        http: httpx.AsyncClient,
        *,
        jwks_uri: str | None = None,
        introspection_endpoint: str | None = None,
        retry_interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._http = http
        self._explicit = {"jwks_uri": jwks_uri, "introspection_endpoint": introspection_endpoint}
        self._metadata: dict[str, Any] | None = None
        self._failed_at: float | None = None
        self._retry_interval = retry_interval
        self._monotonic = monotonic
        self._lock = asyncio.Lock()

    async def jwks_uri(self) -> str:
        return await self._endpoint("jwks_uri")

    async def introspection_endpoint(self) -> str:
        return await self._endpoint("introspection_endpoint")

    async def _endpoint(self, name: str) -> str:
        explicit = self._explicit[name]
        if explicit is not None:
            return explicit
        value = (await self._fetch_metadata()).get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            log.error("the metadata of %s has no usable %s", self.issuer, name)
            raise TemporarilyUnavailable(f"The authorization server publishes no {name}.")
        return value

    async def _fetch_metadata(self) -> dict[str, Any]:
        if self._metadata is not None:
            return self._metadata
        async with self._lock:
            if self._metadata is not None:
                return self._metadata
            now = self._monotonic()
            if self._failed_at is not None and now - self._failed_at < self._retry_interval:
                raise TemporarilyUnavailable("The authorization server cannot be reached.")
            url = self.issuer.rstrip("/") + METADATA_PATH
            try:
                document = await request_json(self._http, "GET", url)
            except (httpx.HTTPError, UnusableAnswer) as exc:
                self._failed_at = now
                log.warning("discovery at %s failed: %s", url, exc)
                raise TemporarilyUnavailable(
                    "The authorization server cannot be reached."
                ) from None
            # RFC 8414 3.3: metadata naming another issuer must not be used.
            if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                self._failed_at = now
                log.error("the metadata at %s does not name the issuer %s", url, self.issuer)
                raise TemporarilyUnavailable("The authorization server's metadata is unusable.")
            self._metadata = document
            return document

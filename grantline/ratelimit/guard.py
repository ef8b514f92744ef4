"""The endpoints' side of rate limiting: whose budget a request spends, and the 429.

RFC 6749 has no error code for "too many requests", so the answer is HTTP 429 (RFC 6585 4)
with ``Retry-After`` and the closest RFC 6749 code, ``temporarily_unavailable`` (``slow_down``
belongs to the device flow, RFC 8628 3.5). The sign-in page shows the same as an error page.

Two budgets per endpoint, each shared by every process:

- per peer address, counted for every request before the client is authenticated;
- per client, counted once the client has authenticated. Before that, the client_id it claims
  is only checked against what this process already knows, at no cost: a client over its
  budget is turned away before its credentials are verified, and nobody can spend another
  client's budget by claiming its client_id.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from grantline.client_auth import present_credentials
from grantline.context import Context
from grantline.errors import OAuthError, TemporarilyUnavailable
from grantline.ratelimit.config import Limit
from grantline.web.errors import handle_oauth_error

__all__ = [
    "RateLimited",
    "client_address",
    "handle_rate_limited",
    "limit_caller",
    "limit_client",
]

log = logging.getLogger("grantline.ratelimit")

_MAX_KEY_PART = 128


class RateLimited(TemporarilyUnavailable):
    """RFC 6585 4: "The 429 status code indicates that the user has sent too many requests in
    a given amount of time"; ``Retry-After`` says how long to wait."""

    status_code = 429
    default_description = "Too many requests; retry after the number of seconds in Retry-After."

    def __init__(self, description: str, retry_after: int, *, detail: str) -> None:
        super().__init__(description, detail=detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


def client_address(request: Request) -> str:
    """The address whose budget a request spends: the TCP peer, and for IPv6 its /64, which
    one host usually holds whole (otherwise every address in it would be a fresh budget)."""
    client = request.scope.get("client")
    return _budget_address(client[0] if client else "unknown")


@functools.lru_cache(maxsize=4096)
def _budget_address(host: str) -> str:
    # Cached: parsing the peer's address on every request was a measurable share of a push.
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _key(endpoint: str, kind: str, value: str) -> str:
    if len(value) > _MAX_KEY_PART:
        # A claimed client_id is the caller's choice; keep keys short whatever it sent.
        value = "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{endpoint}:{kind}:{value}"


def _refuse(whose: str, endpoint: str, limit: Limit, retry_after: int) -> RateLimited:
    return RateLimited(
        f"Too many requests from this {whose}; retry in {retry_after} seconds.",
        retry_after,
        detail=f"{endpoint} {whose} limit {limit}",
    )


async def limit_caller(
    ctx: Context, request: Request, endpoint: str, params: Mapping[str, str] | None = None
) -> None:
    """Before authentication: counts the request against its peer address and, given the
    form, checks the claimed client's budget without counting. Raises ``RateLimited``."""
    limits = ctx.settings.rate_limits.for_endpoint(endpoint)
    if limits is None:
        return
    limiter = ctx.rate_limiter
    if limits.per_address is not None:
        address = client_address(request)
        decision = await limiter.hit(_key(endpoint, "address", address), limits.per_address)
        if not decision.allowed:
            raise _refuse("address", endpoint, limits.per_address, decision.retry_after)
    if limits.per_client is not None and params is not None:
        try:
            claimed = present_credentials(request.headers.get("authorization"), params).client_id
        except OAuthError:
            claimed = None  # authentication will say what is wrong
        if claimed:
            decision = limiter.peek(_key(endpoint, "client", claimed), limits.per_client)
            if not decision.allowed:
                raise _refuse("client", endpoint, limits.per_client, decision.retry_after)


async def limit_client(ctx: Context, endpoint: str, client_id: str) -> None:
    """Counts the request against the client's budget: call it once the client is known (for
    the back channel, authenticated). Raises ``RateLimited``."""
    limits = ctx.settings.rate_limits.for_endpoint(endpoint)
    if limits is None or limits.per_client is None:
        return
    decision = await ctx.rate_limiter.hit(_key(endpoint, "client", client_id), limits.per_client)
    if not decision.allowed:
        raise _refuse("client", endpoint, limits.per_client, decision.retry_after)


async def handle_rate_limited(request: Request, exc: Exception) -> Response:
    """The usual refusal (JSON, or the error page at endpoints that show pages), with
    ``Retry-After`` on both."""
    assert isinstance(exc, RateLimited)
    response = await handle_oauth_error(request, exc)
    response.headers.update(exc.headers)
    return response

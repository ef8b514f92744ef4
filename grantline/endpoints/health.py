"""Health for load balancers and orchestrators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from grantline.endpoints._common import context_of
from grantline.storage import StorageUnavailable
from grantline.web.responses import json_response

__all__ = ["healthz", "readyz"]


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 when this process can reach the database, else 503. Fast and
    unauthenticated; it says nothing but ok or unavailable."""
    ctx = context_of(request)
    try:
        await ctx.store.ping()
    except StorageUnavailable:
        return json_response({"status": "unavailable"}, 503, {"Retry-After": "1"})
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """GET /readyz: 200 when this process can issue tokens: the database answers and an
    active signing key of the configured algorithm exists (the schema was checked at start-up).
    A load balancer should send traffic only to ready processes."""
    ctx = context_of(request)
    alg = ctx.settings.access_token_signing_alg
    try:
        await ctx.store.ping()
        async with ctx.store.reader() as tx:
            keys = await tx.list_signing_keys(ctx.clock())
    except StorageUnavailable:
        return json_response({"status": "unavailable"}, 503, {"Retry-After": "1"})
    if not any(key.active and key.alg == alg for key in keys):
        return json_response({"status": "no_signing_key", "alg": alg}, 503)
    return json_response({"status": "ready"})

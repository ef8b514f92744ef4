"""Health for load balancers and orchestrators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from grantline.endpoints._common import context_of
from grantline.storage import StorageUnavailable
from grantline.web.responses import json_response

__all__ = ["healthz"]


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 when this process can reach the database, else 503. Fast and
    unauthenticated; it says nothing but ok or unavailable."""
    ctx = context_of(request)
    try:
        await ctx.store.ping()
    except StorageUnavailable:
        return json_response({"status": "unavailable"}, 503, {"Retry-After": "1"})
    return json_response({"status": "ok"})

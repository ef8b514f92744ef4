"""Authorization server metadata (RFC 8414) and the JWKS it points to (RFC 7517)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from grantline.endpoints._common import context_of
from grantline.protocol.metadata import server_metadata
from grantline.tokens.keys import public_jwks
from grantline.web.responses import json_response

__all__ = ["jwks", "metadata"]

_PUBLIC = {"Cache-Control": "public, max-age=300"}


async def metadata(request: Request) -> Response:
    """GET /.well-known/oauth-authorization-server."""
    return json_response(server_metadata(context_of(request).settings), headers=_PUBLIC)


async def jwks(request: Request) -> Response:
    """GET /jwks."""
    ctx = context_of(request)
    async with ctx.store.reader() as tx:
        keys = await public_jwks(tx, ctx.clock(), secret=ctx.settings.secret_key)
    return json_response(keys, headers=_PUBLIC)

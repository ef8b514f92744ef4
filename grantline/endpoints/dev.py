"""A development-only landing page for redirect_uri, so a person trying the server by hand sees
the code and the command that exchanges it. Mounted only when ``dev_mode`` is on."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from grantline.endpoints._common import context_of
from grantline.web.errors import page_endpoint
from grantline.web.forms import read_query
from grantline.web.pages import render

__all__ = ["dev_callback"]


@page_endpoint
async def dev_callback(request: Request) -> Response:
    """GET /dev/callback."""
    ctx = context_of(request)
    params = read_query(request, ctx.settings.max_query_bytes)
    return render(
        "dev_callback.html",
        code=params.get("code"),
        state=params.get("state"),
        iss=params.get("iss"),
        error=params.get("error"),
        error_description=params.get("error_description"),
        token_endpoint=ctx.settings.endpoint("/token"),
        redirect_uri=ctx.settings.endpoint("/dev/callback"),
    )

"""A resource server protected by the Grantline SDK (``grantline.rs``), for load.

One route, ``GET /resource``: ``GrantlineResource.token`` verifies the JWT access token
locally against the issuer's published keys (fetched once, then cached) and, for a
DPoP-bound token, the request's proof: signature, ``htm``/``htu``/``ath``/``iat``, the
binding to ``cnf.jkt`` and single use. Nothing is reported back to the issuer. Run with
``uvicorn --factory --app-dir benchmarks/resource resource_server:app_from_environment``
and RS_ISSUER, RS_RESOURCE (the ``aud`` tokens must carry) and RS_PUBLIC_URL (the origin
clients address).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantline.rs import GrantlineResource

__all__ = ["app_from_environment", "create_app"]


def create_app(issuer: str, resource: str, public_url: str) -> Starlette:
    auth = GrantlineResource(
        issuer=issuer, resource=resource, public_url=public_url, report_actions=False
    )

    async def read(request: Request) -> JSONResponse:
        token = await auth.token(request)
        return JSONResponse({"sub": token.sub, "scope": " ".join(token.scopes)})

    return Starlette(
        routes=[Route("/resource", read, methods=["GET"])],
        lifespan=auth.lifespan,
        exception_handlers=auth.exception_handlers,
    )


def app_from_environment() -> Starlette:
    return create_app(
        os.environ["RS_ISSUER"], os.environ["RS_RESOURCE"], os.environ["RS_PUBLIC_URL"]
    )

"""The back-channel endpoints, dispatched without Starlette's router and exception middleware.

Agents call ``/par``, ``/token`` and their siblings thousands of times a second; finding the
route among every route, and wrapping the request and its ``send`` in two more layers for
each, was a measurable share of a push (benchmarks/README.md, "Where the time goes"). These
endpoints have exact paths, take a ``Request`` and return a ``Response``: this middleware,
the innermost, looks them up in a dict and turns their exceptions into responses with the
application's own handlers. Everything else (pages, parametrized paths, other methods, 404
and 405) goes on to Starlette as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectRoutes"]

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Any]


class DirectRoutes:
    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[tuple[str, str], Endpoint],
        handlers: Mapping[Any, Handler],
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.handlers = dict(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        # What Starlette's router would set: the endpoint names the metrics and log line, and
        # decides between a JSON error and an error page.
        scope["endpoint"] = endpoint
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = await self._handler_for(exc)(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Handler:
        # The most specific handler, as Starlette picks one: along the exception's MRO.
        for cls in type(exc).__mro__:
            handler: Handler | None = self.handlers.get(cls)
            if handler is not None:
                return handler
        raise exc

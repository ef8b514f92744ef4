"""The one place where exceptions become responses.

Protocol errors become the RFC 6749 5.2 JSON object, or, at endpoints that talk to a person, an
error page (where redirecting is unsafe). Anything unexpected becomes ``server_error`` with a
fixed message; the traceback goes to the log, never the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from grantline.errors import InvalidRequest, OAuthError, ServerError, TemporarilyUnavailable
from grantline.storage import StorageUnavailable
from grantline.web.observability import count_refusal
from grantline.web.pages import render
from grantline.web.responses import json_response

__all__ = ["exception_handlers", "page_endpoint"]

log = logging.getLogger("grantline.errors")

_PAGE_ATTR = "_grantline_renders_pages"
F = TypeVar("F", bound=Callable[..., Any])


def page_endpoint(func: F) -> F:
    """Mark an endpoint whose errors are shown to a person as a page, not as JSON."""
    setattr(func, _PAGE_ATTR, True)
    return func


def _renders_pages(request: Request) -> bool:
    return bool(getattr(request.scope.get("endpoint"), _PAGE_ATTR, False))


def error_response(request: Request, exc: OAuthError) -> Response:
    if _renders_pages(request):
        return render(
            "error.html",
            status_code=exc.http_status,
            error=exc.error,
            description=exc.description,
        )
    return json_response(exc.body(), exc.http_status, exc.headers)


async def handle_oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    count_refusal(request.scope, exc.error)
    log.info("refused %s %s: %s (%s)", request.method, request.url.path, exc.error, exc.detail)
    return error_response(request, exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = InvalidRequest(
            f"{request.method} is not allowed on this endpoint.",
            status_code=405,
            headers=exc.headers,
        )
    else:
        error = InvalidRequest(exc.detail or "Not found.", status_code=exc.status_code)
    return error_response(request, error)


async def handle_storage_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    error = TemporarilyUnavailable(
        "The server cannot reach its database; retry shortly.", headers={"Retry-After": "1"}
    )
    return error_response(request, error)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(request, ServerError())


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Any]]:
    return {
        OAuthError: handle_oauth_error,
        HTTPException: handle_http_error,
        StorageUnavailable: handle_storage_unavailable,
        Exception: handle_unexpected,
    }

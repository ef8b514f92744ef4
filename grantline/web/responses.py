"""Response helpers: JSON that is never cached, and authorization responses (RFC 9207)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
from starlette.responses import RedirectResponse, Response

__all__ = ["NO_STORE", "authorization_response", "json_response"]

#: RFC 6749 5.1 / RFC 9126 2.2: responses carrying secrets must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    body: Mapping[str, Any], status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def authorization_response(redirect_uri: str, params: Mapping[str, str | None]) -> Response:
    """A 303 to the client's redirect_uri with ``params`` added to its query (RFC 6749 4.1.2).

    303 makes the browser follow with GET after the consent form's POST (RFC 9700 4.12).
    """
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return RedirectResponse(location, status_code=303, headers=NO_STORE)

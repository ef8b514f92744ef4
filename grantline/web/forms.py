"""Reading OAuth parameters off a request, within size limits."""

from __future__ import annotations

from starlette.requests import Request

from grantline.errors import InvalidRequest
from grantline.protocol.params import parse_params

__all__ = ["read_body", "read_form", "read_query"]

FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """The form body as parameters: 413 above ``limit`` (RFC 9126 2.3), 400 for anything that
    is not ``application/x-www-form-urlencoded`` or repeats a parameter."""
    return parse_params(await read_body(request, limit, FORM_TYPE))


async def read_body(request: Request, limit: int, media_type: str) -> bytes:
    """The raw body of a ``media_type`` request: 413 above ``limit``, 400 for another type.

    No timer here: ``grantline serve``'s protocol closes a connection whose request has not
    arrived whole within ``RECEIVE_TIMEOUT`` (``grantline.web.limits``), and the wait below
    then ends with a disconnect.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != media_type:
        raise InvalidRequest(f"The request body must be {media_type}.")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Content-Length is malformed.")
        if int(declared) > limit:
            raise _too_large(limit)
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # The client went away (or the protocol gave up on it): nobody reads the answer.
            raise InvalidRequest("The client disconnected before sending its whole body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_query(request: Request, limit: int) -> dict[str, str]:
    raw = request.scope.get("query_string", b"")
    if len(raw) > limit:
        raise InvalidRequest(f"The query string is longer than {limit} bytes.", status_code=414)
    return parse_params(raw)


def _too_large(limit: int) -> InvalidRequest:
    return InvalidRequest(f"The request body is larger than {limit} bytes.", status_code=413)

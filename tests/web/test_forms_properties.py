"""Properties of reading a form body or a query string off a real Starlette request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Message

from grantline.errors import InvalidRequest
from grantline.web.forms import read_form, read_query
from tests.strategies import PROPERTY, form_bodies

LIMIT = 256

_CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "application/json",
        "multipart/form-data; boundary=x",
        "",
        ";",
        "text/plain\x00",
    ]
)
_LENGTHS = st.one_of(
    st.none(),
    st.integers(0, 2 * LIMIT).map(str),
    st.sampled_from(["", "-1", "1e3", " 5", "０", "99999999999999999999999"]),
)


def _request(
    body_chunks: list[bytes], content_type: str | None, length: str | None, query: bytes
) -> Request:
    headers: list[tuple[bytes, bytes]] = []
    if content_type is not None:
        headers.append((b"content-type", content_type.encode("utf-8")))
    if length is not None:
        headers.append((b"content-length", length.encode("utf-8")))
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body_chunks) - 1}
        for i, chunk in enumerate(body_chunks or [b""])
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/par",
        "headers": headers,
        "query_string": query,
    }
    return Request(scope, receive)


def _outcome(read: Callable[[], Awaitable[dict[str, str]]]) -> dict[str, str] | InvalidRequest:
    async def run() -> dict[str, str] | InvalidRequest:
        try:
            return await read()
        except InvalidRequest as exc:
            return exc

    return anyio.run(run)


@PROPERTY
@given(st.lists(form_bodies(), max_size=4), _CONTENT_TYPES, _LENGTHS)
def test_any_body_is_parameters_or_a_400_or_413(
    chunks: list[bytes], content_type: str | None, length: str | None
) -> None:
    request = _request(chunks, content_type, length, b"")
    result = _outcome(lambda: read_form(request, LIMIT))
    if isinstance(result, InvalidRequest):
        assert result.http_status in (400, 413)
        if result.http_status == 413:
            declared = int(length) if length is not None and length.isdigit() else 0
            assert max(declared, sum(map(len, chunks))) > LIMIT
    else:
        assert sum(map(len, chunks)) <= LIMIT


@PROPERTY
@given(form_bodies())
def test_any_query_is_parameters_or_a_400_or_414(query: bytes) -> None:
    request = _request([], None, None, query)
    try:
        read_query(request, LIMIT // 2)
    except InvalidRequest as exc:
        assert exc.http_status == (414 if len(query) > LIMIT // 2 else 400)
    else:
        assert len(query) <= LIMIT // 2

"""HTTP to the authorization server: Basic credentials encoded per RFC 6749 2.3.1, and answers
that are refused rather than read whole."""

from __future__ import annotations

import base64

import httpx
import pytest

from grantline.rs.transport import (
    MAX_DOCUMENT_BYTES,
    UnusableAnswer,
    basic_authorization,
    request_json,
)


def test_basic_credentials_are_form_urlencoded_first() -> None:
    header = basic_authorization("api client", "a:b%c+d")
    raw = base64.b64decode(header.removeprefix("Basic ")).decode()
    assert raw == "api+client:a%3Ab%25c%2Bd"


def answering(response: httpx.Response) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: response))


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"x" * (MAX_DOCUMENT_BYTES + 1)),
        httpx.Response(200, content=b"not json"),
        httpx.Response(302, headers={"location": "https://evil.example/jwks"}),
        httpx.Response(500, json={"keys": []}),
    ],
)
async def test_unusable_answers_are_refused(response: httpx.Response) -> None:
    async with answering(response) as http:
        with pytest.raises(UnusableAnswer):
            await request_json(http, "GET", "https://as.example/jwks")


async def test_a_json_answer_is_returned() -> None:
    async with answering(httpx.Response(200, json={"keys": []})) as http:
        assert await request_json(http, "GET", "https://as.example/jwks") == {"keys": []}

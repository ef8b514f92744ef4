"""HTTP to the authorization server: one client, bounded reads, no redirects, Basic auth."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import httpx

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_DOCUMENT_BYTES",
    "UnusableAnswer",
    "basic_authorization",
    "new_http_client",
    "request_json",
]

DEFAULT_TIMEOUT = 5.0
#: Metadata, a JWK Set or an introspection answer is a few KiB; a larger one is refused
#: rather than read into memory.
MAX_DOCUMENT_BYTES = 256 * 1024


class UnusableAnswer(Exception):
    """The authorization server answered, but not with what was asked for."""


def new_http_client() -> httpx.AsyncClient:
    # A redirect could send credentials or trust elsewhere; the AS's URLs are configured.
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False)


def basic_authorization(client_id: str, client_secret: str) -> str:
    """RFC 6749 2.3.1: both parts form-urlencoded before Base64 (httpx's ``auth=`` skips
    the encoding, which breaks secrets containing ``:`` or ``%``)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


async def request_json(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
) -> Any:
    """The JSON body of a 200 answer; ``httpx.HTTPError`` when unreachable, ``UnusableAnswer``
    for another status, an oversized body or one that is not JSON."""
    all_headers = {"accept": "application/json", **(headers or {})}
    async with http.stream(method, url, headers=all_headers, data=data) as response:
        if response.status_code != 200:
            raise UnusableAnswer(f"{url} answered {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise UnusableAnswer(f"{url} answered with more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise UnusableAnswer(f"{url} did not answer with JSON") from None

"""What ``grantline serve`` accepts on the wire before the application sees a request.

uvicorn's httptools protocol puts no bound on the request line or the headers, and no deadline
on a request that never finishes: a client could hold a connection open for ever by sending a
byte now and then, or make the process buffer megabytes of headers. The protocol below keeps
uvicorn's parsing and adds those bounds: one timer per request, from its first byte to its
last (head and body), so the application never needs one of its own; the body's size is
bounded by ``max_body_bytes`` in ``grantline.web.forms``. Per-process concurrency is bounded
by ``max_concurrent_requests`` (``grantline.ratelimit.admission``).

Answers are the RFC 6749 5.2 JSON object with the status the HTTP RFCs give: 400 for a request
that is not HTTP/1.1 at all, 408 (RFC 9110 15.5.9) for a head that is too slow, 414 (15.5.15)
for a long request target, 431 (RFC 6585 5) for too many or too large header fields. The
connection is closed after each.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from grantline.settings import Settings
from grantline.web.security import refusal_headers

__all__ = [
    "KEEP_ALIVE_TIMEOUT",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_TARGET",
    "RECEIVE_TIMEOUT",
    "CoalescingTransport",
    "GuardedHttpToolsProtocol",
    "server_options",
]

#: Seconds from the connection (or the end of the previous request) to the end of the request,
#: head and body. A real client sends a request in a packet or a few; a client trickling its
#: bytes is holding a connection.
RECEIVE_TIMEOUT = 10.0
#: Seconds an idle keep-alive connection stays open (uvicorn's default, set explicitly).
KEEP_ALIVE_TIMEOUT = 5
#: Seconds a stopping process waits for requests in flight before closing their connections.
GRACEFUL_SHUTDOWN_TIMEOUT = 30
#: Bytes of path and query; twice the default ``max_query_bytes``, which the endpoints that
#: read a query enforce with a precise error page.
MAX_REQUEST_TARGET = 16 * 1024
#: Header fields per request; browsers send about 20, and OAuth clients fewer.
MAX_HEADERS = 100
#: Bytes of all header names and values together: room for a DPoP proof with an RSA-4096 key
#: and a browser's cookies for the host.
MAX_HEADER_BYTES = 32 * 1024

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
}


class CoalescingTransport:
    """A transport whose writes made in one pass of the event loop leave in one system call.

    uvicorn writes a response's head and its body separately; with uvloop each write is a
    ``send`` at once, so every small answer cost two system calls and reached the client in
    two TCP segments. Joined at the end of the loop's pass (``call_soon``), a push cost 7 %
    less CPU (benchmarks/README.md, "What changed because of it").
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending = []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request and size bounds on its
    head."""

    # Set before uvicorn's own __init__ runs, since connection_made may follow at once.
    _request_timer: asyncio.TimerHandle | None = None
    _refused = False
    _header_count = 0
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)
        self._arm_request_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_request_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers a parse error in plain text; ours is the same refusal as any other.
        if not self._refused:
            self._refuse(400, "The request is not valid HTTP/1.1.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._header_bytes = 0
        self._arm_request_timer()

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        super().on_url(url)
        if len(self.url) > MAX_REQUEST_TARGET:
            self._refuse(414, f"The request target is longer than {MAX_REQUEST_TARGET} bytes.")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if self._header_count > MAX_HEADERS:
            self._refuse(431, f"The request has more than {MAX_HEADERS} header fields.")
        elif self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(431, f"The request headers are larger than {MAX_HEADER_BYTES} bytes.")
        else:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._cancel_request_timer()
        super().on_message_complete()

    def _arm_request_timer(self) -> None:
        self._cancel_request_timer()
        self._request_timer = self.loop.call_later(RECEIVE_TIMEOUT, self._request_timed_out)

    def _cancel_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if not self._refused and not self.transport.is_closing():
            # Once the head is in, the application may be waiting for the body: closing the
            # connection hands it a disconnect, and it answers nobody.
            self._refuse(408, f"The request did not arrive within {RECEIVE_TIMEOUT:g} s.")

    def _refuse(self, status: int, description: str) -> None:
        """Answer without involving the application, and close: the parser's state past this
        point is not worth trusting."""
        self._refused = True
        self._cancel_request_timer()
        body = json.dumps({"error": "invalid_request", "error_description": description})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
            *refusal_headers(hsts=False),
        ]
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.logger.info("refused a request head: %s", description)
        self.transport.write(head + b"\r\n" + body.encode("ascii"))
        self.transport.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options ``grantline serve`` uses for the connection and transport."""
    return {
        "http": GuardedHttpToolsProtocol,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_TIMEOUT,
        # Forwarded headers only from the configured proxies; an empty list trusts nobody
        # (uvicorn would otherwise read FORWARDED_ALLOW_IPS, or trust 127.0.0.1).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "server_header": False,
    }

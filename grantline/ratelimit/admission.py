"""Admission control: a bound on the requests one worker process takes on.

A worker admits at most ``max_concurrent_requests`` requests at once. And once a batch of
requests (those the event loop found ready together, before it got back to anything scheduled
after them) reached that many, it starts at most that many of the next batch. The second bound
is for handlers that never wait (SQLite runs on the event loop): they run one after another,
so "at once" never grows, yet under overload each request queues behind the hundreds that
became ready with it, and so does /healthz.

A request past the first bound waits, outside the application, up to ``admission_wait_ms`` for
a slot, first come first served; past the second it is refused at once (waiting would only
lengthen the batch). Refused requests get 503 ``temporarily_unavailable`` with
``Retry-After: 1``. The wait matters: refusing at once let clients that retry at once (wrk
does, and so do naive ones) spend the worker's CPU on refusals while the admitted requests
starved (benchmarks/README.md, "Overload"). For the same reason a refusal costs as little as
possible: this is the outermost middleware, the answer is prebuilt (with the security headers),
and instead of a log line each, refusals are counted in ``grantline_requests_total`` (endpoint
``admission``) and summed up in one warning every ten seconds. Health checks are never held or
refused, so a load balancer can tell a busy process from a dead one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from grantline.web.observability import REQUESTS
from grantline.web.pages import render
from grantline.web.security import refusal_headers

__all__ = ["AdmissionLimit"]

#: Paths that are always admitted.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
#: Paths a person's browser opens: they get the error page rather than JSON.
_PAGE_PREFIXES = ("/authorize", "/interaction/")

log = logging.getLogger("grantline.admission")

#: Seconds between the summaries of refused requests in the log.
_LOG_EVERY = 10.0

_ERROR = "temporarily_unavailable"
_DESCRIPTION = "The server is busy; retry in a second."


def _prebuilt(
    body: bytes, content_type: bytes, security: list[tuple[bytes, bytes]]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        *security,
    ]
    return headers, body


class AdmissionLimit:
    """Pure ASGI middleware; ``limit`` 0 admits everything."""

    def __init__(self, app: ASGIApp, limit: int, wait: float = 0.0, hsts: bool = False) -> None:
        self.app = app
        self.limit = limit
        self.wait = wait
        self.active = 0
        #: Requests started, and requests seen, in the current batch; requests seen in the last.
        self.started = 0
        self.seen = 0
        self.seen_before = 0
        self._batch_marked = False
        self._slots = asyncio.Semaphore(max(limit, 1))
        self._shed = 0
        self._next_log = 0.0
        security = refusal_headers(hsts=hsts)
        self._json = _prebuilt(
            json.dumps({"error": _ERROR, "error_description": _DESCRIPTION}).encode(),
            b"application/json",
            security,
        )
        page = render("error.html", status_code=503, error=_ERROR, description=_DESCRIPTION)
        self._page = _prebuilt(bytes(page.body), b"text/html; charset=utf-8", security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self._crowded() or not await self._admitted():
            await self._refuse(scope, receive, send)
            return
        self.active += 1
        self.started += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self._slots.release()

    def _crowded(self) -> bool:
        """The last batch was crowded and this one has started ``limit`` requests."""
        self.seen += 1
        if not self._batch_marked:
            # Runs after everything the loop already has ready: the end of this batch.
            self._batch_marked = True
            asyncio.get_running_loop().call_soon(self._end_batch)
        return self.seen_before >= self.limit and self.started >= self.limit

    def _end_batch(self) -> None:
        self._batch_marked = False
        self.seen_before, self.seen, self.started = self.seen, 0, 0

    async def _admitted(self) -> bool:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: returns without suspending
            return True
        if not self.wait:
            return False
        try:
            async with asyncio.timeout(self.wait):
                await self._slots.acquire()
        except TimeoutError:
            return False
        return True

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Refusals are what an overloaded worker spends its time on: prebuilt, counted in the
        # metrics, and logged as a summary rather than a line each.
        page = str(scope["path"]).startswith(_PAGE_PREFIXES)
        head, body = self._page if page else self._json
        REQUESTS.labels("admission", "503").inc()
        self._shed += 1
        now = time.monotonic()
        if now >= self._next_log:
            log.warning("overloaded: %d requests refused by admission control", self._shed)
            self._shed, self._next_log = 0, now + _LOG_EVERY
        await send({"type": "http.response.start", "status": 503, "headers": head})
        await send({"type": "http.response.body", "body": body})

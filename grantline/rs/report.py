"""``ActionReporter``: tells the authorization server what was done with each token.

Every allowed or refused action becomes one report, sent to ``POST {issuer}/actions`` in the
background so that the request being served never waits for the authorization server:
``report()`` is synchronous and O(1). One sender task delivers the reports in order and
retries, with exponential backoff and jitter, while the authorization server is unreachable or
answers 5xx or 429 (honouring ``Retry-After``). Each report's ``report_id`` is fixed when it
is queued, so a retry of a report that did arrive is recorded once.

The queue is bounded: when it is full, the oldest report is dropped, counted in ``dropped``
and logged (once per burst). A 4xx answer other than 429 means the report itself or this
resource server's credentials are wrong; retrying would not help, so it is logged and counted
in ``rejected``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from grantline.rs.transport import basic_authorization, new_http_client

__all__ = ["ActionReport", "ActionReporter", "Outcome"]

log = logging.getLogger("grantline.rs.report")

Outcome = Literal["allowed", "refused"]
#: Limits ``POST /actions`` enforces; a report over them would be refused, not recorded.
MAX_REASON = 300
MAX_FACT_TEXT = 512
MAX_FACTS = 32
MAX_RESOURCE = 2048
_random = secrets.SystemRandom()


@dataclass(frozen=True, slots=True)
class ActionReport:
    report_id: str
    jti: str
    outcome: Outcome
    at: int
    type: str | None
    action: Mapping[str, Any]
    error: str | None = None
    reason: str | None = None
    resource: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "report_id": self.report_id,
            "jti": self.jti,
            "outcome": self.outcome,
            "at": self.at,
            "type": self.type,
            "action": dict(self.action),
        }
        for name in ("error", "reason", "resource"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


def _wire_value(value: object) -> str | int | bool:
    """A fact as ``POST /actions`` takes it: a string (at most 512 characters), an integer
    that survives a JSON double, or a boolean. Decimals and floats travel as strings, so no
    amount is ever rounded."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_FACT_TEXT else text[: MAX_FACT_TEXT - 3] + "..."


def _text(value: str | None, limit: int) -> str | None:
    """Optional text members: absent rather than empty, and cut to the accepted length."""
    if not value:
        return None
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _retry_after(response: httpx.Response, now: float) -> float | None:
    """RFC 9110 10.2.3: delay-seconds or an HTTP-date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.fromtimestamp(now, UTC)).total_seconds())


class ActionReporter:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        endpoint: str | None = None,
        max_queue: int = 10_000,
        initial_backoff: float = 0.5,
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.endpoint = endpoint or issuer.rstrip("/") + "/actions"
        self._authorization = basic_authorization(client_id, client_secret)
        self._max_queue = max_queue
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._owns_http = http is None
        self._http = http or new_http_client()
        self._clock = clock
        self._queue: deque[ActionReport] = deque()
        self._in_flight: ActionReport | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._burst = 0
        self._warned_not_started = False
        #: Reports dropped because the queue was full (or queued after ``aclose``).
        self.dropped = 0
        #: Reports the authorization server accepted (202, including duplicates).
        self.sent = 0
        #: Reports the authorization server refused with a 4xx other than 429.
        self.rejected = 0
        #: Attempts that failed and were retried.
        self.retries = 0

    @property
    def pending(self) -> int:
        """Reports queued or being delivered."""
        return len(self._queue) + (self._in_flight is not None)

    # -- the request path -----------------------------------------------------------------

    def report(
        self,
        *,
        jti: str,
        outcome: Outcome,
        type: str | None,
        action: Mapping[str, object],
        error: str | None = None,
        reason: str | None = None,
        resource: str | None = None,
    ) -> str:
        """Queue one report and return its ``report_id``; never waits and never raises for
        the authorization server's sake."""
        report = ActionReport(
            report_id=secrets.token_urlsafe(16),
            jti=jti,
            outcome=outcome,
            at=int(self._clock()),
            type=_text(type, 128),
            action={name: _wire_value(v) for name, v in list(action.items())[:MAX_FACTS]},
            error=_text(error, 64),
            reason=_text(reason, MAX_REASON),
            # A cut URL would name another resource: too long is left out instead.
            resource=resource if resource and len(resource) <= MAX_RESOURCE else None,
        )
        if self._closing:
            self.dropped += 1
            log.warning("action report %s dropped: the reporter is closed", report.report_id)
            return report.report_id
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self.dropped += 1
            if self._burst == 0:
                log.warning(
                    "action report queue full (%d): dropping the oldest reports", self._max_queue
                )
            self._burst += 1
        self._queue.append(report)
        if self._task is None and not self._warned_not_started:
            self._warned_not_started = True
            log.warning("action reports are queued but the reporter was not started")
        self._wakeup.set()
        return report.report_id

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.create_task(self._run(), name="grantline-action-reporter")

    async def aclose(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, for at most ``timeout`` seconds, then stop."""
        self._closing = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.pending:
            log.warning("%d action reports were not delivered before shutdown", self.pending)
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> ActionReporter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the sender -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            self._in_flight = self._queue.popleft()
            # Cancelled mid-delivery (close deadline), it stays counted as pending.
            await self._deliver(self._in_flight)
            self._in_flight = None
            if self._burst and len(self._queue) < self._max_queue // 2 + 1:
                log.warning("action report queue recovered; %d reports were dropped", self._burst)
                self._burst = 0

    async def _deliver(self, report: ActionReport) -> None:
        failures = 0
        body = report.body()
        while True:
            delay = await self._attempt(report, body)
            if delay is None:
                return
            self.retries += 1
            failures += 1
            backoff = min(self._max_backoff, self._initial_backoff * 2 ** min(failures - 1, 30))
            if delay == 0:
                # Equal jitter: spreads the retries of many resource servers without ever
                # retrying at once.
                delay = backoff / 2 + _random.uniform(0, backoff / 2)
            await asyncio.sleep(delay)

    async def _attempt(self, report: ActionReport, body: dict[str, Any]) -> float | None:
        """None when done with the report; else how long to wait (0: use the backoff)."""
        try:
            response = await self._http.post(
                self.endpoint, json=body, headers={"authorization": self._authorization}
            )
        except httpx.HTTPError as exc:
            log.info("action report %s: %s; retrying", report.report_id, type(exc).__name__)
            return 0.0
        except Exception:
            # Never let one report stop the sender.
            log.exception("action report %s could not be sent", report.report_id)
            self.rejected += 1
            return None
        status = response.status_code
        if 200 <= status < 300:
            self.sent += 1
            return None
        if status == 429 or status >= 500:
            retry_after = _retry_after(response, self._clock())
            log.info("action report %s: %d; retrying", report.report_id, status)
            if retry_after is None:
                return 0.0
            # The server said when to come back: no sooner (and not absurdly later).
            return max(min(retry_after, self._max_retry_after), self._initial_backoff)
        self.rejected += 1
        log.error(
            "action report %s refused with %d (%s); not retried",
            report.report_id,
            status,
            response.text[:200],
        )
        return None

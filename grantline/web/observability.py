"""Request ids, structured JSON logs and Prometheus metrics.

Every request gets an id (the caller's ``X-Request-Id`` when it is a sane token, else a new
one), echoed in the response and attached to every log line written while it is handled. Logs
name the path but never the query string, which carries request_uris and codes, nor the
token in an interaction's path. Metrics count
requests and refusals per endpoint and time them; with several worker processes they are
aggregated through ``PROMETHEUS_MULTIPROC_DIR``, which ``grantline serve`` sets.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import os
import re
import secrets
import time
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["JsonFormatter", "Observability", "count_refusal", "log_config", "metrics"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "grantline_request_id", default=None
)
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_access = logging.getLogger("grantline.requests")

REQUESTS = Counter(
    "grantline_requests_total", "HTTP requests by endpoint and status.", ["endpoint", "status"]
)
LATENCY = Histogram(
    "grantline_request_duration_seconds",
    "Time to answer, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REFUSALS = Counter(
    "grantline_refusals_total",
    "Protocol refusals by endpoint and RFC error code.",
    ["endpoint", "error"],
)


def _endpoint_name(scope: Scope) -> str:
    endpoint = scope.get("endpoint")
    return getattr(endpoint, "__name__", None) or "unmatched"


#: Path segments that are bearer-like secrets: an interaction's URL names it by its token.
_SECRET_SEGMENT = re.compile(r"^/interaction/[^/]+")


def loggable_path(path: str) -> str:
    """The path as logs may show it: without an interaction token."""
    return _SECRET_SEGMENT.sub("/interaction/{token}", path)


#: Request ids need to be unique, not secret: a random prefix per process and a counter, rather
#: than a system call for fresh randomness on every request.
_ID_PREFIX = secrets.token_hex(4)
_id_counter = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFF:08x}"


def count_refusal(scope: Scope, error: str) -> None:
    REFUSALS.labels(_endpoint_name(scope), error).inc()


# ``labels()`` validates and locks on every call; the children are looked up once per label
# set instead (both sets are small: endpoints times status codes).
_request_counters: dict[tuple[str, int], Any] = {}
_latency_histograms: dict[str, Any] = {}


def _record(name: str, status: int, elapsed: float) -> None:
    counter = _request_counters.get((name, status))
    if counter is None:
        counter = _request_counters[name, status] = REQUESTS.labels(name, str(status))
    histogram = _latency_histograms.get(name)
    if histogram is None:
        histogram = _latency_histograms[name] = LATENCY.labels(name)
    counter.inc()
    histogram.observe(elapsed)


class Observability:
    """Pure ASGI middleware: request id, one log line and metrics per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _SANE_ID.fullmatch(incoming) else _new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("ascii")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            name = _endpoint_name(scope)
            _record(name, status, elapsed)
            _access.info(
                "%s %s %s",
                scope["method"],
                loggable_path(scope["path"]),
                status,
                extra={"duration_ms": round(elapsed * 1000, 2), "status": status},
            )
            request_id_var.reset(token)


async def metrics(request: Request) -> Response:
    """GET /metrics in the Prometheus text format, summed over worker processes."""
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being handled."""

    _EXTRA = ("duration_ms", "status")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for name in self._EXTRA:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry).decode("utf-8")
        except orjson.JSONEncodeError:  # a lone surrogate in a message
            return json.dumps(entry, ensure_ascii=False)


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines to stderr, written once per event-loop iteration rather than once per line.

    ``sys.stderr`` is line-buffered: one ``write`` system call per request line, which was a
    measurable share of a push. Here the lines logged for requests while the event loop runs
    one batch of ready work (under load, many requests) leave in one write, queued with
    ``call_soon`` to the end of that batch; so nothing waits for a timer. Lines logged outside
    a request or outside a running loop, and warnings or worse, are written at once.
    """

    def __init__(self, fd: int = 2) -> None:
        stream = open(  # noqa: SIM115 - lives as long as the process
            fd, "w", buffering=1 << 16, encoding="utf-8", closefd=False
        )
        super().__init__(stream)
        self._flush_queued = False
        # The JSON lines carry none of these, so the logging module need not collect them for
        # every record (the caller's source line costs a walk up the stack each time).
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        logging._srcfile = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or request_id_var.get() is None:
                # The server's own lines (startup, shutdown) may be its last: the process
                # can end by signal, with no chance to flush later.
                self.flush()
            elif not self._flush_queued:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    self.flush()
                    return
                self._flush_queued = True
                loop.call_soon(self._flush_batch)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _flush_batch(self) -> None:
        self._flush_queued = False
        self.flush()


def log_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for ``grantline serve``: JSON lines on stderr."""
    handler = {
        "()": "grantline.web.observability.BufferedStderrHandler",
        "formatter": "json",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "grantline.web.observability.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "grantline": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }

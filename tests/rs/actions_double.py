"""A stand-in for the authorization server's ``POST /actions``, served by a real uvicorn on
127.0.0.1 in a thread: it records what it gets, answers what a test scripts (503, 429 with
Retry-After, 400...), can hold its answers, and is not listening until started, so a
reporter meets a refused connection. It stands in for the authorization server's
availability; the reporter under test is the real one."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.rs.served import Served


@dataclass(frozen=True)
class Received:
    at: float
    authorization: str | None
    body: dict[str, Any]


class ActionsDouble:
    def __init__(self) -> None:
        app = Starlette(routes=[Route("/actions", self._actions, methods=["POST"])])
        self._served = Served(app)
        self.port = self._served.port
        self.received: list[Received] = []
        #: Answers to give next, as (status, headers); 202 once it is empty.
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        #: Cleared: every answer waits until it is set again.
        self.gate = threading.Event()
        self.gate.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/actions"

    @property
    def report_ids(self) -> list[str]:
        return [r.body["report_id"] for r in self.received]

    async def _actions(self, request: Request) -> JSONResponse:
        self.received.append(
            Received(time.monotonic(), request.headers.get("authorization"), await request.json())
        )
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        status, headers = self.script.popleft() if self.script else (202, {})
        if status == 202:
            return JSONResponse({"status": "recorded"}, 202)
        error = {400: "invalid_request", 429: "slow_down", 503: "temporarily_unavailable"}
        body = {"error": error.get(status, "server_error"), "error_description": "scripted"}
        return JSONResponse(body, status, headers=headers)

    def start(self) -> None:
        self._served.start()

    def stop(self) -> None:
        self.gate.set()
        self._served.stop()

"""Admission control: past the bounds a request is answered 503 (at once, or after a bounded
wait for a slot), health checks never are, and the bounds free up as requests finish."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.types import Message, Receive, Scope, Send

from grantline.app import create_app
from grantline.models import Client
from grantline.ratelimit.admission import AdmissionLimit
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.helpers import ISSUER, Agent, FrozenClock


class HeldApp:
    """Answers 200 once released; counts the requests it is holding."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.holding += 1
        await self.release.wait()
        self.holding -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


async def sync_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A handler that never waits, like one on SQLite."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


async def until(condition: Callable[[], object], attempts: int = 1000) -> None:
    """Lets the other tasks run until ``condition`` holds (no clock involved)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def call(app: AdmissionLimit, path: str = "/par") -> tuple[int, dict[str, str], Any]:
    """One request straight through ASGI: (status, headers, body)."""
    scope: Scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
    body = sent[1]["body"]
    if headers.get("content-type") == "application/json":
        body = json.loads(body)
    return sent[0]["status"], headers, body


async def test_past_the_bound_requests_are_refused_at_once_and_health_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "grantline.admission")
    before = REGISTRY.get_sample_value(
        "grantline_requests_total", {"endpoint": "admission", "status": "503"}
    )
    held = HeldApp()
    guard = AdmissionLimit(held, limit=2)
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        first = asyncio.create_task(http.post("/par"))
        second = asyncio.create_task(http.get("/jwks"))
        await until(lambda: held.holding == 2)

        refused = await http.post("/token")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["cache-control"] == "no-store"
        assert refused.json() == {
            "error": "temporarily_unavailable",
            "error_description": "The server is busy; retry in a second.",
        }
        page = await http.get("/interaction/abc")
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "temporarily_unavailable" in page.text
        assert page.headers["retry-after"] == "1"

        # Health checks are admitted whatever the load (they are held like the others here).
        health = asyncio.create_task(http.get("/healthz"))
        ready = asyncio.create_task(http.get("/readyz"))
        await until(lambda: held.holding == 4)
        assert guard.active == 2

        held.release.set()
        answers = await asyncio.gather(first, second, health, ready)
        assert [r.status_code for r in answers] == [200] * 4
        assert guard.active == 0
        assert (await http.post("/token")).status_code == 200
    # Two refusals: counted, and summed up in one line rather than logged each.
    after = REGISTRY.get_sample_value(
        "grantline_requests_total", {"endpoint": "admission", "status": "503"}
    )
    assert (after or 0) - (before or 0) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "overloaded: 1 requests refused by admission control"
    ]


async def test_a_request_past_the_bound_waits_for_a_slot_first_come_first_served() -> None:
    held = HeldApp()
    guard = AdmissionLimit(held, limit=1, wait=60)
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        first = asyncio.create_task(http.post("/par"))
        await until(lambda: held.holding == 1)
        queued = [asyncio.create_task(http.post("/par")) for _ in range(3)]
        await until(lambda: len(guard._slots._waiters or ()) == 3)
        assert held.holding == 1  # the others wait outside the application
        held.release.set()
        answers = await asyncio.gather(first, *queued)
        assert [r.status_code for r in answers] == [200] * 4
        assert guard.active == 0


async def test_a_request_that_finds_no_slot_within_the_wait_is_refused() -> None:
    held = HeldApp()
    guard = AdmissionLimit(held, limit=1, wait=0.01)
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        first = asyncio.create_task(http.post("/par"))
        await until(lambda: held.holding == 1)
        refused = await http.post("/par")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "temporarily_unavailable"
        held.release.set()
        assert (await first).status_code == 200
        # The refused request gave its turn back: the bound is whole again.
        assert (await http.post("/par")).status_code == 200
        assert guard.active == 0


async def batch(guard: AdmissionLimit, size: int) -> list[int]:
    """``size`` requests that become ready together, as when a flood arrives; their statuses."""
    outcomes = await asyncio.gather(*(call(guard) for _ in range(size)))
    return [status for status, _, _ in outcomes]


async def test_after_a_crowded_batch_at_most_the_bound_starts_in_the_next() -> None:
    # Handlers that never wait: never two run at once, yet in a batch of ready requests the
    # last ones queue behind all the others.
    guard = AdmissionLimit(sync_app, limit=3, wait=60)
    assert await batch(guard, 5) == [200] * 5
    # The last batch had 5: at most 3 start in this one, the others are refused at once.
    health = asyncio.create_task(call(guard, "/healthz"))
    assert await batch(guard, 5) == [200, 200, 200, 503, 503]
    assert (await health)[0] == 200
    status, headers, body = await call(guard)  # a batch of one: fits
    assert status == 200
    assert await batch(guard, 5) == [200] * 5  # the last batch was small again
    assert await batch(guard, 4) == [200, 200, 200, 503]
    refused = await asyncio.gather(*(call(guard) for _ in range(4)))
    status, headers, body = refused[-1]
    assert (status, headers["retry-after"]) == (503, "1")
    assert body["error"] == "temporarily_unavailable"


async def test_requests_one_after_another_are_never_crowded() -> None:
    guard = AdmissionLimit(sync_app, limit=1)
    # Even without giving the event loop a turn between them (as with an in-memory client).
    for _ in range(5):
        assert (await call(guard))[0] == 200
    for _ in range(5):
        await asyncio.sleep(0)
        assert (await call(guard))[0] == 200


async def test_zero_admits_everything() -> None:
    held = HeldApp()
    guard = AdmissionLimit(held, limit=0)
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        tasks = [asyncio.create_task(http.post("/par")) for _ in range(20)]
        await until(lambda: held.holding == 20)
        held.release.set()
        assert {r.status_code for r in await asyncio.gather(*tasks)} == {200}


async def test_the_server_sheds_load_with_its_configured_bound(
    settings: Settings, store: SQLiteStore, clock: FrozenClock, client: Client
) -> None:
    bounded = dataclasses.replace(settings, max_concurrent_requests=1, admission_wait_ms=10)
    app = create_app(bounded, store, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        agent = Agent(http)
        # Hold the database: the first push waits inside the server for it.
        await store._lock.acquire()
        try:
            waiting = asyncio.create_task(agent.push_raw(agent.params("v" * 43)))
            # asyncio.Lock keeps its queue in _waiters: the push is queued behind us.
            await until(lambda: store._lock._waiters)
            refused = await agent.push_raw(agent.params("v" * 43))
            assert refused.status_code == 503
            assert refused.json()["error"] == "temporarily_unavailable"
            assert refused.headers["retry-after"] == "1"
            # Security headers still apply to a refusal.
            assert refused.headers["x-content-type-options"] == "nosniff"
            assert (await http.get("/healthz")).status_code == 200
        finally:
            store._lock.release()
        assert (await waiting).status_code == 201
        assert (await agent.push_raw(agent.params("v" * 43))).status_code == 201

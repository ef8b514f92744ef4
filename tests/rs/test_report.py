"""``ActionReporter`` against a real HTTP server standing in for the authorization server:
delivery, retries through outages, Retry-After, refusals that are not retried, a full queue,
and a request path that never waits."""

from __future__ import annotations

import base64
import inspect
import logging
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest

from grantline.rs.report import ActionReporter, _retry_after
from tests.rs.actions_double import ActionsDouble

CLIENT_ID = "payments-api"
SECRET = "s3cret:with%odd+chars"


@pytest.fixture
def double() -> Iterator[ActionsDouble]:
    double = ActionsDouble()
    try:
        yield double
    finally:
        double.stop()


def reporter_for(double: ActionsDouble, **options: object) -> ActionReporter:
    options.setdefault("initial_backoff", 0.05)
    options.setdefault("max_backoff", 0.2)
    return ActionReporter(
        issuer="http://127.0.0.1:1",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        endpoint=double.url,
        **options,  # type: ignore[arg-type]
    )


def report(reporter: ActionReporter, n: int = 0) -> str:
    return reporter.report(
        jti=f"jti-{n}",
        outcome="allowed",
        type="payment_initiation",
        action={"action": "initiate", "amount": Decimal("42.00"), "n": n},
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def test_a_report_arrives_authenticated_and_shaped_as_the_endpoint_takes_it(
    double: ActionsDouble,
) -> None:
    double.start()
    reporter = reporter_for(double)
    await reporter.start()
    report_id = reporter.report(
        jti="jti-1",
        outcome="refused",
        type="payment_initiation",
        action={"action": "initiate", "amount": Decimal("500.00"), "urgent": True, "count": 2},
        error="insufficient_authorization_details",
        reason="amount exceeds the granted instructedAmount.amount.",
        resource="https://api.example/payments/1",
    )
    await reporter.aclose()
    (received,) = double.received
    assert received.body == {
        "report_id": report_id,
        "jti": "jti-1",
        "outcome": "refused",
        "at": received.body["at"],
        "type": "payment_initiation",
        "action": {"action": "initiate", "amount": "500.00", "urgent": True, "count": 2},
        "error": "insufficient_authorization_details",
        "reason": "amount exceeds the granted instructedAmount.amount.",
        "resource": "https://api.example/payments/1",
    }
    assert abs(received.body["at"] - time.time()) < 5
    assert len(report_id) >= 16
    # RFC 6749 2.3.1: client_secret_basic with both parts form-urlencoded.
    assert received.authorization is not None
    decoded = base64.b64decode(received.authorization.removeprefix("Basic ")).decode()
    assert decoded == "payments-api:s3cret%3Awith%25odd%2Bchars"
    assert (reporter.sent, reporter.dropped, reporter.rejected) == (1, 0, 0)


async def test_reporting_does_not_await_the_network(double: ActionsDouble) -> None:
    assert not inspect.iscoroutinefunction(ActionReporter.report)
    double.gate.clear()  # the authorization server hangs on every answer
    double.start()
    reporter = reporter_for(double)
    await reporter.start()
    report(reporter)
    await eventually(lambda: len(double.received) == 1)
    started = time.perf_counter()
    ids = [report(reporter, n) for n in range(1, 1001)]
    assert time.perf_counter() - started < 0.5
    assert reporter.pending == 1001
    double.gate.set()
    await reporter.aclose(timeout=60)
    assert double.report_ids[1:] == ids
    assert reporter.sent == 1001


async def test_reports_are_retried_until_the_authorization_server_comes_back(
    double: ActionsDouble,
) -> None:
    reporter = reporter_for(double)
    await reporter.start()
    report_id = report(reporter)
    # Nothing listens on the port yet: connections are refused.
    await eventually(lambda: reporter.retries >= 3)
    assert double.received == []
    double.start()
    await eventually(lambda: reporter.sent == 1)
    await reporter.aclose()
    assert double.report_ids == [report_id]


async def test_5xx_answers_are_retried_with_the_same_report_id(double: ActionsDouble) -> None:
    double.script.extend([(503, {}), (500, {}), (502, {})])
    double.start()
    reporter = reporter_for(double)
    await reporter.start()
    report_id = report(reporter)
    await eventually(lambda: reporter.sent == 1)
    await reporter.aclose()
    assert double.report_ids == [report_id] * 4
    assert reporter.retries == 3


@pytest.mark.parametrize("status", [503, 429])
async def test_retry_after_is_honoured(double: ActionsDouble, status: int) -> None:
    double.script.append((status, {"Retry-After": "1"}))
    double.start()
    reporter = reporter_for(double, initial_backoff=0.01)
    await reporter.start()
    report(reporter)
    await eventually(lambda: reporter.sent == 1)
    await reporter.aclose()
    first, second = double.received
    assert second.at - first.at >= 0.95
    assert first.body["report_id"] == second.body["report_id"]


async def test_a_400_is_logged_and_not_retried(
    double: ActionsDouble, caplog: pytest.LogCaptureFixture
) -> None:
    double.script.append((400, {}))
    double.start()
    reporter = reporter_for(double)
    await reporter.start()
    refused = report(reporter, 1)
    accepted = report(reporter, 2)
    await eventually(lambda: reporter.sent == 1)
    await reporter.aclose()
    assert double.report_ids == [refused, accepted]
    assert (reporter.rejected, reporter.retries) == (1, 0)
    assert any(
        f"action report {refused} refused with 400" in r.getMessage() for r in caplog.records
    )


async def test_a_full_queue_drops_the_oldest_reports_counts_and_logs_once(
    double: ActionsDouble, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = reporter_for(double, max_queue=3)
    ids = [report(reporter, n) for n in range(5)]
    assert reporter.dropped == 2
    assert reporter.pending == 3
    full = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.WARNING
    double.start()
    await reporter.start()
    await reporter.aclose()
    assert double.report_ids == ids[2:]
    assert any("2 reports were dropped" in r.getMessage() for r in caplog.records)


async def test_close_stops_at_its_deadline_and_says_what_was_lost(
    double: ActionsDouble, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = reporter_for(double)
    await reporter.start()
    report(reporter, 1)
    report(reporter, 2)
    started = time.monotonic()
    await reporter.aclose(timeout=0.3)
    assert time.monotonic() - started < 2
    assert any("2 action reports were not delivered" in r.getMessage() for r in caplog.records)


async def test_a_report_after_close_is_dropped_and_counted(double: ActionsDouble) -> None:
    reporter = reporter_for(double)
    await reporter.start()
    await reporter.aclose()
    report(reporter)
    assert reporter.dropped == 1


async def test_report_fields_are_kept_within_what_the_endpoint_accepts(
    double: ActionsDouble,
) -> None:
    double.start()
    reporter = reporter_for(double)
    await reporter.start()
    reporter.report(
        jti="jti-1",
        outcome="refused",
        type="file_access",
        action={"location": "/x" * 400, "big": 2**60, **{f"f{n}": n for n in range(40)}},
        error="",
        reason="r" * 1000,
        resource="https://api.example/" + "a" * 3000,
    )
    await reporter.aclose()
    (received,) = double.received
    body = received.body
    assert len(body["action"]) == 32
    assert len(body["action"]["location"]) == 512
    assert body["action"]["big"] == str(2**60)
    assert len(body["reason"]) == 300
    assert "error" not in body and "resource" not in body


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    date = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:30:00 GMT"})
    assert _retry_after(date, now) == 120
    assert _retry_after(httpx.Response(503, headers={"Retry-After": "7"}), now) == 7
    assert _retry_after(httpx.Response(503, headers={"Retry-After": "soon"}), now) is None
    assert _retry_after(httpx.Response(503), now) is None

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import os
from pathlib import Path

import httpx
import pytest

from grantline.web.observability import (
    BufferedStderrHandler,
    JsonFormatter,
    log_config,
    loggable_path,
    request_id_var,
)
from tests.helpers import Agent


async def test_a_sane_request_id_is_echoed_and_a_strange_one_replaced(
    http: httpx.AsyncClient,
) -> None:
    kept = await http.get("/healthz", headers={"x-request-id": "trace-42.a_b"})
    assert kept.headers["x-request-id"] == "trace-42.a_b"
    replaced = await http.get("/healthz", headers={"x-request-id": "bad id<script>"})
    assert replaced.headers["x-request-id"] != "bad id"
    assert len(replaced.headers["x-request-id"]) == 16
    fresh = await http.get("/healthz")
    assert fresh.headers["x-request-id"] != replaced.headers["x-request-id"]


async def test_metrics_count_requests_and_refusals_by_rfc_code(agent: Agent) -> None:
    await agent.push()
    await agent.push_raw(agent.params("v" * 43, scope="admin"))
    body = (await agent.http.get("/metrics")).text
    assert 'grantline_requests_total{endpoint="pushed_authorization_request",status="201"}' in body
    assert (
        'grantline_refusals_total{endpoint="pushed_authorization_request",error="invalid_scope"}'
        in body
    )
    assert "grantline_request_duration_seconds_bucket" in body


async def test_request_log_lines_carry_the_id_and_never_the_query(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="grantline.requests")
    await http.get(
        "/authorize?client_id=x&request_uri=urn:secret-ref", headers={"x-request-id": "r-1"}
    )
    (record,) = [r for r in caplog.records if r.name == "grantline.requests"]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /authorize 400"
    assert line["status"] == 400
    assert "secret-ref" not in json.dumps(line)


def test_json_lines_include_the_request_id_in_scope() -> None:
    record = logging.LogRecord(
        "grantline.x", logging.WARNING, __file__, 1, "hello %s", ("w",), None
    )
    token = request_id_var.set("req-9")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello w"
    assert line["level"] == "warning"
    assert line["request_id"] == "req-9"


def test_the_serve_log_configuration_is_valid() -> None:
    config = log_config()
    logging.config.dictConfig(config)
    assert config["loggers"]["grantline"]["handlers"] == ["default"]
    # Leave logging as pytest expects it.
    logging.getLogger("grantline").handlers.clear()
    logging.getLogger("grantline").propagate = True
    logging.getLogger("uvicorn").handlers.clear()
    logging.getLogger("uvicorn").propagate = True


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/interaction/s3cr3t-token", "/interaction/{token}"),
        ("/interaction/s3cr3t-token/login", "/interaction/{token}/login"),
        ("/interaction/s3cr3t-token/decision", "/interaction/{token}/decision"),
        ("/par", "/par"),
        ("/x/interaction/abc", "/x/interaction/abc"),
    ],
)
def test_interaction_tokens_never_reach_the_log(path: str, logged: str) -> None:
    assert loggable_path(path) == logged


async def test_request_lines_leave_once_per_loop_iteration_and_warnings_at_once(
    tmp_path: Path,
) -> None:
    out = tmp_path / "stderr"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    try:
        handler = BufferedStderrHandler(fd=fd)
        handler.setFormatter(JsonFormatter())
        logger = logging.Logger("grantline.test.buffered")
        logger.addHandler(handler)
        token = request_id_var.set("req-1")
        try:
            logger.info("first")
            logger.info("second")
            assert out.read_text() == ""  # both still in the buffer
            await asyncio.sleep(0)  # the end of this batch of ready work
            assert [json.loads(x)["message"] for x in out.read_text().splitlines()] == [
                "first",
                "second",
            ]
            logger.warning("third")
            assert json.loads(out.read_text().splitlines()[-1])["message"] == "third"
        finally:
            request_id_var.reset(token)
        # Outside a request: the server's own lines, perhaps its last, are not held.
        logger.info("Application shutdown complete.")
        assert "shutdown complete" in out.read_text().splitlines()[-1]
    finally:
        os.close(fd)


def test_a_line_logged_outside_an_event_loop_is_written_at_once(tmp_path: Path) -> None:
    out = tmp_path / "stderr"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    try:
        handler = BufferedStderrHandler(fd=fd)
        logger = logging.Logger("grantline.test.buffered")
        logger.addHandler(handler)
        logger.info("alone")
        assert out.read_text() == "alone\n"
    finally:
        os.close(fd)

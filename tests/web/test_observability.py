from __future__ import annotations

import json
import logging
import logging.config

import httpx
import pytest

from grantline.web.observability import JsonFormatter, log_config, loggable_path, request_id_var
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

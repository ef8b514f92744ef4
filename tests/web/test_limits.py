"""Every input limit, from the attacker's side: the oversize request and the exact refusal.

The request-head limits live in the HTTP protocol ``grantline serve`` gives uvicorn, so those
tests run a real uvicorn server (in this process, on 127.0.0.1) with the same options.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from grantline.cli import main
from grantline.models import User
from grantline.protocol.jose import MAX_JSON_DEPTH
from grantline.protocol.rar import MAX_DEPTH, MAX_DETAILS, MAX_LENGTH
from grantline.protocol.resource import MAX_RESOURCES
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from grantline.web import limits
from tests.conftest import add_client
from tests.helpers import ISSUER, Agent, FrozenClock, new_verifier
from tests.jose_helpers import (
    assertion_form,
    ec_key,
    jwks_of,
    public_jwk,
    request_object,
    sign,
)

DEPLOY = {"type": "deployment", "service": "api", "environment": "prod"}


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def assert_refusal(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert set(body) == {"error", "error_description"}
    return body


# -- bodies and queries ---------------------------------------------------------------------


async def test_a_body_over_max_body_bytes_is_413(agent: Agent, settings: Settings) -> None:
    response = await agent.push_raw({"state": "x" * settings.max_body_bytes})
    body = assert_refusal(response, 413, "invalid_request")
    assert str(settings.max_body_bytes) in body["error_description"]


async def test_a_client_that_leaves_mid_body_gets_a_quiet_refusal_not_a_500(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    messages = iter(
        [
            {"type": "http.request", "body": b"response_type=code", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = agent.http._transport.app  # type: ignore[attr-defined]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/par",
        "raw_path": b"/par",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert "unexpected" not in caplog.text


async def test_a_query_over_max_query_bytes_is_414_on_the_page(
    agent: Agent, settings: Settings
) -> None:
    response = await agent.http.get(
        "/authorize", params={"client_id": "agent", "state": "x" * settings.max_query_bytes}
    )
    assert response.status_code == 414
    assert response.headers["content-type"].startswith("text/html")
    assert "invalid_request" in response.text
    assert f"longer than {settings.max_query_bytes} bytes" in response.text


async def test_more_parameters_than_any_request_needs_are_400(agent: Agent) -> None:
    response = await agent.push_raw({f"p{i}": "1" for i in range(65)})
    body = assert_refusal(response, 400, "invalid_request")
    assert body["error_description"] == "The request has too many parameters."


# -- authorization_details, resources, JWT payloads -----------------------------------------


@pytest.mark.parametrize(
    ("details", "description"),
    [
        pytest.param(
            [{"type": "file_access", "actions": ["read"], "locations": ["/" + "x" * MAX_LENGTH]}],
            f"authorization_details is longer than {MAX_LENGTH} characters.",
            id="size",
        ),
        pytest.param(
            [DEPLOY] * (MAX_DETAILS + 1),
            f"authorization_details has more than {MAX_DETAILS} items.",
            id="items",
        ),
        pytest.param(
            [{**DEPLOY, "x": _deep(MAX_DEPTH)}],
            "authorization_details is nested too deeply.",
            id="depth",
        ),
        pytest.param(
            None,
            "authorization_details is not valid JSON.",
            id="depth-past-the-decoder",
        ),
    ],
)
async def test_oversize_authorization_details_are_refused(
    agent: Agent, details: Any, description: str
) -> None:
    # None: deeper than the JSON decoder goes, which json.dumps cannot write either.
    raw = json.dumps(details) if details is not None else "[" * 3000 + "]" * 3000
    response = await agent.push_raw(agent.params(new_verifier(), authorization_details=raw))
    body = assert_refusal(response, 400, "invalid_authorization_details")
    assert body["error_description"] == description


async def test_more_resources_than_allowed_are_invalid_target(agent: Agent) -> None:
    resources = [f"https://api.example/r{i}" for i in range(MAX_RESOURCES + 1)]
    data = [*agent.params(new_verifier()).items(), *(("resource", r) for r in resources)]
    response = await agent.push_raw(
        None, content=urlencode(data), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    body = assert_refusal(response, 400, "invalid_target")
    assert body["error_description"] == f"At most {MAX_RESOURCES} resources may be requested."


async def test_a_dpop_proof_nested_too_deeply_is_invalid_dpop_proof(
    agent: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    claims = f'{{"htm": "POST", "htu": "{ISSUER}/par", "iat": {clock.now}, "jti": "j", "x": '
    payload = (claims + "[" * 5000 + "]" * 5000 + "}").encode()
    proof = sign(key, payload, header={"typ": "dpop+jwt", "jwk": public_jwk(key)})
    response = await agent.push_raw(agent.params(new_verifier()), headers={"DPoP": proof})
    body = assert_refusal(response, 400, "invalid_dpop_proof")
    assert "nested too deeply" in body["error_description"]


async def test_a_request_object_nested_too_deeply_is_invalid_request_object(
    http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock, user: User
) -> None:
    key = ec_key("jar-1")
    await add_client(store, client_id="jar", jwks=jwks_of(key))
    claims = {"response_type": "code", "x": _deep(MAX_JSON_DEPTH)}
    token = request_object(key, "jar", claims, clock.now)
    response = await Agent(http, "jar").push_raw({"request": token})
    body = assert_refusal(response, 400, "invalid_request_object")
    assert "nested too deeply" in body["error_description"]


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 5000])
async def test_a_client_assertion_nested_too_deeply_is_invalid_client(
    http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock, levels: int
) -> None:
    key = ec_key("signer-1")
    await add_client(
        store, client_id="signer", auth_method="private_key_jwt", secret=None, jwks=jwks_of(key)
    )
    claims = {"iss": "signer", "sub": "signer", "aud": ISSUER, "exp": clock.now + 60, "jti": "j"}
    payload = json.dumps(claims)[:-1] + ', "x": ' + "[" * levels + "]" * levels + "}"
    assertion = sign(key, payload.encode())
    response = await http.post(
        "/token",
        data={**assertion_form(assertion, "signer"), "grant_type": "refresh_token"},
    )
    body = assert_refusal(response, 401, "invalid_client")
    assert "nested too deeply" in body["error_description"]
    assert response.headers["www-authenticate"].startswith("Basic")


# -- the request head, on a real server -----------------------------------------------------


@pytest.fixture
async def served(app: Starlette, settings: Settings) -> AsyncIterator[tuple[str, int]]:
    """The app behind uvicorn with ``grantline serve``'s options, on a free loopback port."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        **limits.server_options(settings),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        await task


async def _exchange(address: tuple[str, int], data: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


def _parse(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def _head(*headers: bytes, target: bytes = b"/healthz") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(headers) + b"\r\n"


@pytest.mark.parametrize(
    ("request_head", "status", "says"),
    [
        pytest.param(
            lambda: _head(b"X-Big: " + b"a" * limits.MAX_HEADER_BYTES + b"\r\n"),
            431,
            "larger than",
            id="header-bytes",
        ),
        pytest.param(
            lambda: _head(*(b"X-H%d: v\r\n" % i for i in range(limits.MAX_HEADERS))),
            431,
            "header fields",
            id="header-count",
        ),
        pytest.param(
            lambda: _head(target=b"/healthz?" + b"a" * limits.MAX_REQUEST_TARGET),
            414,
            "request target",
            id="request-target",
        ),
        pytest.param(
            lambda: _head(b"X-Bad: a\x7fb\r\n"),
            400,
            "not valid HTTP",
            id="malformed",
        ),
    ],
)
async def test_an_oversize_request_head_is_refused_and_the_connection_closed(
    served: tuple[str, int], request_head: Callable[[], bytes], status: int, says: str
) -> None:
    code, headers, body = _parse(await _exchange(served, request_head()))
    assert code == status
    assert body["error"] == "invalid_request"
    assert says in body["error_description"]
    assert headers["connection"] == "close"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"


async def test_a_request_head_within_the_limits_is_served(served: tuple[str, int]) -> None:
    many = [b"X-H%d: v\r\n" % i for i in range(limits.MAX_HEADERS - 2)]
    raw = await _exchange(served, _head(*many, b"Connection: close\r\n"))
    assert raw.startswith(b"HTTP/1.1 200 ")


async def test_a_request_head_that_never_finishes_is_408(
    served: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "RECEIVE_TIMEOUT", 0.3)
    code, headers, body = _parse(await _exchange(served, b"GET /healthz HTTP/1.1\r\nHo"))
    assert code == 408
    assert body["error"] == "invalid_request"
    assert headers["connection"] == "close"


async def test_a_body_that_trickles_past_the_deadline_is_408(
    served: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "RECEIVE_TIMEOUT", 0.3)
    head = (
        b"POST /par HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
    )
    code, headers, body = _parse(await _exchange(served, head + b"response_type=code"))
    assert code == 408
    assert body["error"] == "invalid_request"
    assert "did not arrive" in body["error_description"]
    assert headers["connection"] == "close"


async def test_a_body_that_arrives_in_pieces_within_the_deadline_is_served(
    served: tuple[str, int], agent: Agent
) -> None:
    form = "&".join(f"{k}={quote(v, safe='')}" for k, v in agent.params(new_verifier()).items())
    credentials = base64.b64encode(f"{agent.client_id}:{agent.secret}".encode())
    head = (
        b"POST /par HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Basic " + credentials + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(form)
    )
    reader, writer = await asyncio.open_connection(*served)
    try:
        writer.write(head + form[:10].encode())
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(form[10:].encode())
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert raw.startswith(b"HTTP/1.1 201 ")


async def test_an_idle_connection_is_closed_without_an_answer_after_keep_alive(
    served: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "RECEIVE_TIMEOUT", 0.3)
    raw = await _exchange(served, _head(), wait=limits.KEEP_ALIVE_TIMEOUT + 3)
    # One answer, then the idle connection is closed by the keep-alive timeout (5 s).
    assert raw.count(b"HTTP/1.1 ") == 1 and raw.startswith(b"HTTP/1.1 200 ")


# -- serve's uvicorn options and trusted proxies --------------------------------------------


def _recorder() -> tuple[list[Scope], Callable[[Scope, Receive, Send], Any]]:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    return seen, app


async def _through_uvicorn(
    settings: Settings, peer: str, headers: list[tuple[bytes, bytes]]
) -> Scope:
    """The scope the application sees once uvicorn's configured middleware has run."""
    seen, app = _recorder()
    config = uvicorn.Config(app, log_config=None, **limits.server_options(settings))
    config.load()
    scope = {
        "type": "http",
        "scheme": "http",
        "client": (peer, 40000),
        "server": ("10.0.0.1", 8000),
        "headers": headers,
        "path": "/token",
        "method": "POST",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    await config.loaded_app(scope, receive, send)
    [result] = seen
    return result


_FORWARDED = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]


async def test_forwarded_headers_from_an_untrusted_address_are_ignored(
    settings: Settings,
) -> None:
    behind = Settings(**{**_fields(settings), "trusted_proxies": ("10.0.0.5",)})
    scope = await _through_uvicorn(behind, "10.0.0.6", _FORWARDED)
    assert scope["client"] == ("10.0.0.6", 40000)
    assert scope["scheme"] == "http"


async def test_forwarded_headers_from_a_trusted_proxy_are_believed(settings: Settings) -> None:
    behind = Settings(**{**_fields(settings), "trusted_proxies": ("10.0.0.0/24",)})
    scope = await _through_uvicorn(behind, "10.0.0.5", _FORWARDED)
    assert scope["client"][0] == "203.0.113.9"
    assert scope["scheme"] == "https"


async def test_without_trusted_proxies_nobody_is_believed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn would otherwise trust FORWARDED_ALLOW_IPS, or 127.0.0.1.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    scope = await _through_uvicorn(settings, "127.0.0.1", _FORWARDED)
    assert scope["client"] == ("127.0.0.1", 40000)
    assert scope["scheme"] == "http"


@pytest.mark.parametrize("proxy", ["*", "10.0.0.5/8", "proxy.internal", ""])
def test_trusted_proxies_must_be_addresses_or_networks(settings: Settings, proxy: str) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(**{**_fields(settings), "trusted_proxies": (proxy,)})


def test_serve_sets_timeouts_and_the_guarded_protocol(settings: Settings) -> None:
    options = limits.server_options(settings)
    assert options["http"] is limits.GuardedHttpToolsProtocol
    assert options["timeout_keep_alive"] == limits.KEEP_ALIVE_TIMEOUT == 5
    assert options["timeout_graceful_shutdown"] == limits.GRACEFUL_SHUTDOWN_TIMEOUT
    assert options["proxy_headers"] is False
    assert options["forwarded_allow_ips"] == []


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


def test_serve_hands_trusted_proxies_from_grantline_toml_to_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CliRunner().invoke(main, ["init", "--data-dir", str(tmp_path)]).exit_code == 0
    config = tmp_path / "grantline.toml"
    config.write_text('trusted_proxies = ["10.0.0.5", "10.1.0.0/16"]\n' + config.read_text())
    # serve() exports these for the worker processes; register them so they are restored.
    for name in ("GRANTLINE_DATA_DIR", "GRANTLINE_SERVE_URL", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.setenv(name, "placeholder")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))

    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    [options] = calls
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == ["10.0.0.5", "10.1.0.0/16"]
    assert options["http"] is limits.GuardedHttpToolsProtocol


class _RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_writes_made_in_one_pass_of_the_loop_leave_together() -> None:
    inner = _RecordingTransport()
    loop = asyncio.get_running_loop()
    transport = limits.CoalescingTransport(inner, loop)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
    transport.write(b'{"request_uri":"x"}')
    assert inner.writes == []
    await asyncio.sleep(0)
    assert inner.writes == [b'HTTP/1.1 201 Created\r\n\r\n{"request_uri":"x"}']
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes[-1] == b"next"
    # Everything else is the real transport's.
    assert transport.get_extra_info("peername") == "info:peername"


async def test_closing_sends_what_is_pending_first_and_nothing_after() -> None:
    inner = _RecordingTransport()
    loop = asyncio.get_running_loop()
    transport = limits.CoalescingTransport(inner, loop)  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed
    await asyncio.sleep(0)  # the queued flush finds nothing left
    assert inner.writes == [b"last words"]

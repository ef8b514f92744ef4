"""The token scenario: Grantline only, sized like the other single-use fixtures, its refresh
tokens minted into the target's own database, and token.lua spending each once and counting
only a 200 that carries an access token."""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from grantline.instance import Instance
from grantline.tokens.digest import Digester
from grantline.tokens.ordered import refresh_token_id
from suite.browser import AuthServer
from suite.process import clean_env, run_checked
from suite.scenarios import SCENARIOS, Load, Prepared, _single_use_count, build_job
from suite.targets import (
    BENCH_CLIENT,
    GRANTLINE_ENDPOINTS,
    REDIRECT_URI,
    VENV_BIN,
    CeilingTarget,
    GrantlineTarget,
    OidcProviderTarget,
    ResourceTarget,
)
from suite.wrk import run_wrk, wrk_path

PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def test_registered_for_grantline_targets_only_and_run_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SCENARIOS["token"].title == "token refresh, client_secret_basic"
    assert SCENARIOS["token"].unit == "refreshes"
    for target in (GrantlineTarget(1), GrantlineTarget(2), GrantlineTarget(2, PG)):
        assert "token" in target.scenarios
    sqlite_1 = GrantlineTarget(1)
    for other in (
        OidcProviderTarget(1, "node"),
        OidcProviderTarget(2, "node", adapter="sqlite"),
        CeilingTarget(1),
        ResourceTarget(1, sqlite_1),
    ):
        assert "token" not in other.scenarios
    from suite.__main__ import _arguments

    monkeypatch.setattr(sys, "argv", ["run.sh"])
    assert "token" in _arguments().scenarios.split(",")


def test_tokens_are_minted_for_the_guess_then_well_past_the_fastest_rate_seen() -> None:
    prepared = Prepared("verifier", "challenge")
    assert _single_use_count("token", GrantlineTarget(1), prepared, 10) == 6000 * 10 + 500
    assert _single_use_count("token", GrantlineTarget(2, PG), prepared, 2) == 12000 * 2 + 500
    prepared.rates = {"token": 4000.0}
    assert _single_use_count("token", GrantlineTarget(1), prepared, 10) == 10000 * 10 + 500


@pytest.fixture
def initialised(tmp_path: Path) -> GrantlineTarget:
    """A Grantline target with its instance and benchmark client, as ``start`` leaves them,
    without a server."""
    target = GrantlineTarget(1)
    target.port = 1
    data = tmp_path / target.key
    target.data_dir, target.env = data, clean_env()
    grantline = str(VENV_BIN / "grantline")
    run_checked([grantline, "init", "--data-dir", str(data)], env=target.env)
    added = run_checked(
        [grantline, "clients", "add", "--data-dir", str(data), "--name", "bench"]
        + ["--client-id", BENCH_CLIENT, "--redirect-uri", REDIRECT_URI, "--json"],
        env=target.env,
    )
    secret = json.loads(added)["client_secret"]
    target.auth = AuthServer(
        target.base_url, GRANTLINE_ENDPOINTS, BENCH_CLIENT, secret, REDIRECT_URI, "", ""
    )
    return target


def test_job_mints_refresh_tokens_into_the_targets_database(
    initialised: GrantlineTarget, tmp_path: Path
) -> None:
    fixtures = tmp_path / "tokens.txt"
    load = Load(seconds=0.1, warmup=0, connections=64, flow_connections=1)
    job = build_job("token", initialised, Prepared("v", "c"), load, 0.1, fixtures)
    assert job.script == "token.lua"
    assert job.url == initialised.base_url + "/token"
    assert (job.threads, job.connections) == (2, 64)
    assert job.env["TOKENS_FILE"] == str(fixtures)
    assert job.env["CLIENT_ID"] == BENCH_CLIENT
    tokens = fixtures.read_text().split()
    assert len(tokens) == len(set(tokens)) == 600 + 500
    assert initialised.data_dir is not None
    settings = Instance(initialised.data_dir).settings()
    digester = Digester(settings.secret_key)
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT token_digest, client_id, COUNT(DISTINCT grant_id) FROM tokens "
            "WHERE kind = 'refresh_token' GROUP BY token_digest"
        ).fetchall()
    # Each token stored as the server stores one (its time, then its keyed digest), for the
    # benchmark client, on a grant of its own.
    assert {row[0] for row in rows} == {refresh_token_id(digester, t) for t in tokens}
    assert {row[1] for row in rows} == {BENCH_CLIENT}
    assert {row[2] for row in rows} == {1}


class _TokenEndpoint(BaseHTTPRequestHandler):
    """Answers like a token endpoint to the tokens it knows, each once: 200 with an access
    token, except for ``no_access_token``, answered 200 with none; anything else 400."""

    protocol_version = "HTTP/1.1"
    # Head and body leave in two writes: without this, each answer waits for a delayed ACK.
    disable_nagle_algorithm = True
    known: frozenset[str] = frozenset()
    no_access_token = ""
    authorization = ""
    received: Counter[str] = Counter()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = parse_qs(body)
        token = form["refresh_token"][0]
        with self.lock:
            self.received[token] += 1
            first = self.received[token] == 1
        time.sleep(0.005)  # a few hundred answers a second: no load on the machine
        good = (
            first
            and token in self.known
            and form["grant_type"] == ["refresh_token"]
            and self.headers["Authorization"] == self.authorization
        )
        if good and token != self.no_access_token:
            status, answer = 200, {"access_token": "at-" + token, "token_type": "Bearer"}
        elif good:
            status, answer = 200, {"token_type": "Bearer"}
        else:
            status, answer = 400, {"error": "invalid_grant"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, type[_TokenEndpoint]]]:
    handler = type("Handler", (_TokenEndpoint,), {"received": Counter()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(wrk_path() is None, reason="wrk is not installed")
def test_token_lua_spends_each_token_once_and_counts_200_with_access_token(
    token_endpoint: tuple[str, type[_TokenEndpoint]], tmp_path: Path
) -> None:
    url, handler = token_endpoint
    tokens = [f"token-{i:03d}" for i in range(60)]
    handler.known = frozenset(tokens)
    handler.no_access_token = tokens[7]
    handler.authorization = "Basic " + base64.b64encode(b"bench:s3cret").decode()
    path = tmp_path / "tokens.txt"
    path.write_text("\n".join(tokens) + "\n")
    env = clean_env(CLIENT_ID="bench", CLIENT_SECRET="s3cret", TOKENS_FILE=str(path))
    result = run_wrk("token.lua", url, seconds=1, threads=2, connections=2, env=env)
    # Both threads together sent every token once, then "exhausted" (refused). wrk calls the
    # first thread's request() once before the run to check it: that token is never sent.
    sent = {t for t in tokens if handler.received[t]}
    assert sent >= set(tokens[1:])
    assert all(handler.received[t] == 1 for t in sent)
    assert set(handler.received) == {*sent, "exhausted"}
    assert result.ops == len(sent) - 1
    assert result.ops + result.bad == result.requests
    assert result.bad_sample is not None and result.bad_sample.startswith(("200 ", "400 "))

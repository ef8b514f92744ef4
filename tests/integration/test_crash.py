"""A ``grantline serve`` killed with SIGKILL in the middle of a load of whole flows, on SQLite
and on PostgreSQL, then started again on the same instance.

Every change and the audit event that records it are written in one transaction, so whatever a
crash interrupts, the database must hold both or neither: these tests read the database
directly after the restart and look for state without its event (and events without their
state). The interrupted work must then be retryable: every request that got no answer, sent
again to the new process, is answered (never with a 5xx), and a fresh flow succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.cluster_support import (
    Cluster,
    Node,
    init_cluster,
    start_nodes,
)
from tests.integration.support import SHUTDOWN_TIMEOUT, new_verifier, only_form, query_of, s256

pytestmark = [pytest.mark.integration, pytest.mark.timeout(45)]

#: Threads driving whole flows at once, each with its own back channel and browsers.
WORKERS = 8
#: How long the load runs before the server is killed.
LOAD_SECONDS = 2.0
#: The longest the kill waits for the first whole flow to finish.
FIRST_FLOW_WAIT = 30.0
#: Every request's bound; a server that is killed resets its connections at once.
REQUEST_TIMEOUT = 5.0
#: The longest the kill waits for a request to be in flight.
IN_FLIGHT_WAIT = 2.0
#: The longest a worker may take to notice the server is gone.
WORKER_JOIN_TIMEOUT = 3 * REQUEST_TIMEOUT


# -- fixtures ---------------------------------------------------------------------------------


@dataclass
class Instance:
    """One instance directory and its database: None for the SQLite file in the directory."""

    cluster: Cluster
    database_url: str | None


@pytest.fixture
def instance(database_url: str | None, tmp_path: Path) -> Iterator[Instance]:
    """An initialised instance with no process running yet. Every node still running at the
    end is stopped; a traceback in its log, or a shutdown that was not graceful, fails the
    test (a killed node is taken out of ``cluster.nodes`` by the test)."""
    cluster = init_cluster(tmp_path / "instance", database_url)
    try:
        yield Instance(cluster, database_url)
    finally:
        problems = cluster.stop()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# -- driving flows ----------------------------------------------------------------------------


class ServerGone(Exception):
    """A request got no response: the server died under it (or before it)."""


class FlowBroken(Exception):
    """A response that a healthy server must not give; recorded in ``Load.unexpected``."""


@dataclass(frozen=True)
class Unanswered:
    """A request that got no response, kept to be sent again to the restarted server."""

    step: str
    method: str
    path: str
    params: Mapping[str, str] | None
    data: Mapping[str, str] | None
    auth: tuple[str, str] | None
    cookies: Mapping[str, str]
    error: str
    #: False when the connection was refused: the request never reached the server.
    reached: bool


@dataclass
class Load:
    """Flows driven against one node from several threads, and what happened to them."""

    node: Node
    cluster: Cluster
    killed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    flows: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    unanswered: list[Unanswered] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def send(
        self,
        client: httpx.Client,
        step: str,
        method: str,
        path: str,
        expected: int,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        """One request of a flow; the response, which must have the ``expected`` status."""
        cookies = dict(client.cookies)
        with self.lock:
            self.in_flight += 1
        try:
            response = client.request(
                method,
                self.node.url(path),
                params=params,
                data=data,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            with self.lock:
                self.unanswered.append(
                    Unanswered(
                        step,
                        method,
                        path,
                        params,
                        data,
                        auth,
                        cookies,
                        repr(exc),
                        reached=not isinstance(exc, httpx.ConnectError),
                    )
                )
            # A timeout is no crash: a killed server resets its connections at once.
            if not self.killed.is_set() or isinstance(exc, httpx.TimeoutException):
                self.broken(f"{step}: {method} {path}: no response: {exc!r}")
            raise ServerGone(step) from exc
        finally:
            with self.lock:
                self.in_flight -= 1
        with self.lock:
            self.answered[step] += 1
        if response.status_code != expected:
            self.broken(
                f"{step}: {method} {path}: expected {expected}, got "
                f"{response.status_code}: {response.text[:500]}"
            )
        return response

    def broken(self, message: str) -> None:
        with self.lock:
            self.unexpected.append(message)
        raise FlowBroken(message)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.broken(message)

    def wait_for_in_flight(self, timeout: float) -> int:
        """Wait until some request is in flight; how many are (0 when none came in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.in_flight:
                    return self.in_flight
            time.sleep(0.001)
        return 0


def new_client() -> httpx.Client:
    """No base URL: every request names the node. Redirects are observed one at a time."""
    return httpx.Client(timeout=REQUEST_TIMEOUT, follow_redirects=False)


def one_flow(load: Load, agent: httpx.Client, person: httpx.Client, refreshes: int) -> None:
    """PAR, /authorize, login (unless the browser is signed in), consent, decision, code
    exchange, then ``refreshes`` rotations; every status checked, raising ``ServerGone`` or
    ``FlowBroken`` at the first failure."""
    creds = load.cluster.credentials
    auth = (creds.client_id, creds.client_secret)
    verifier, state = new_verifier(), secrets.token_urlsafe(16)
    pushed = load.send(
        agent,
        "par",
        "POST",
        "/par",
        201,
        auth=auth,
        data={
            "response_type": "code",
            "redirect_uri": load.cluster.dev_redirect_uri,
            "scope": "inbox.read",
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
    )
    opened = load.send(
        person,
        "authorize",
        "GET",
        "/authorize",
        303,
        params={"client_id": creds.client_id, "request_uri": pushed.json()["request_uri"]},
    )
    interaction = opened.headers["location"]
    load.check(interaction.startswith("/interaction/"), f"authorize: to {interaction}")
    page = only_form(load.send(person, "interaction page", "GET", interaction, 200).text)
    if page.action == f"{interaction}/login":
        load.send(
            person,
            "login",
            "POST",
            page.action,
            303,
            data={
                "csrf_token": page.inputs["csrf_token"],
                "username": creds.username,
                "password": creds.password,
            },
        )
        page = only_form(load.send(person, "consent page", "GET", interaction, 200).text)
    consent_form = page
    load.check(consent_form.action == f"{interaction}/decision", "expected the consent page")
    decided = load.send(
        person,
        "decision",
        "POST",
        consent_form.action,
        303,
        data={"csrf_token": consent_form.inputs["csrf_token"], "decision": "approve"},
    )
    answer = query_of(decided.headers["location"])
    load.check(answer.get("state") == state and "code" in answer, f"decision: {answer}")
    issued = load.send(
        agent,
        "code exchange",
        "POST",
        "/token",
        200,
        auth=auth,
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "code_verifier": verifier,
            "redirect_uri": load.cluster.dev_redirect_uri,
        },
    )
    refresh_token = issued.json()["refresh_token"]
    for _ in range(refreshes):
        refreshed = load.send(
            agent,
            "refresh",
            "POST",
            "/token",
            200,
            auth=auth,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        rotated = refreshed.json()["refresh_token"]
        load.check(rotated != refresh_token, "refresh: the refresh token was not rotated")
        refresh_token = rotated


def worker(load: Load, index: int) -> None:
    """Whole flows until told to stop or the server is gone. Every fourth worker opens each
    flow in a new browser, so it signs in every time (argon2id, by far the slowest step); the
    others keep their browser, so after their first flow the consent page comes at once. So
    every step is under load, not only the sign-in."""
    returning = index % 4 != 0
    with new_client() as agent, new_client() as kept:
        while not load.stop.is_set():
            with contextlib.ExitStack() as stack:
                person = kept if returning else stack.enter_context(new_client())
                try:
                    one_flow(load, agent, person, refreshes=1 + index % 3)
                except (ServerGone, FlowBroken):
                    return
            with load.lock:
                load.flows += 1


# -- reading the database ---------------------------------------------------------------------

QUERIES = {
    "pushed_requests": "SELECT request_id FROM authorization_requests WHERE pushed",
    "interactions": "SELECT interaction_id, request_id FROM interactions",
    "grants": "SELECT grant_id FROM grants",
    "consumed_codes": (
        "SELECT code_digest, grant_id FROM authorization_codes WHERE consumed_at IS NOT NULL"
    ),
    "access_tokens": "SELECT jti, grant_id FROM tokens WHERE kind = 'access_token'",
    "refresh_tokens": "SELECT token_digest, grant_id FROM tokens WHERE kind = 'refresh_token'",
    "events": "SELECT seq, type, request_id, grant_id, data FROM audit_events ORDER BY seq",
}


def read_database(instance: Instance) -> dict[str, list[tuple[Any, ...]]]:
    """Every query of ``QUERIES`` in one read transaction, so all see the same snapshot."""
    if instance.database_url is None:
        path = instance.cluster.data_dir / "grantline.db"
        assert path.is_file(), f"no SQLite database at {path}"
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("BEGIN")
            try:
                return {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()}
            finally:
                conn.execute("ROLLBACK")
    with psycopg.connect(instance.database_url, autocommit=True) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction(force_rollback=True):
            return {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()}


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    request_id: str | None
    grant_id: str | None
    data: dict[str, Any]


def audit_gaps(rows: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Every row of state without the audit event that records its creation (or its use), and
    every such event without its row; empty when state and trail agree."""
    events = [Event(s, t, r, g, json.loads(d)) for s, t, r, g, d in rows["events"]]

    def ids(types: set[str], attribute: str) -> set[Any]:
        return {getattr(e, attribute) for e in events if e.type in types}

    def jtis(types: set[str]) -> set[Any]:
        return {e.data.get("access_token_jti") for e in events if e.type in types}

    gaps: list[str] = []

    def expect(rows_without_event: list[Any], what: str) -> None:
        if rows_without_event:
            gaps.append(f"{len(rows_without_event)} {what}: {rows_without_event[:5]}")

    accepted = ids({"pushed_request.accepted"}, "request_id")
    pushed = {r for (r,) in rows["pushed_requests"]}
    expect(
        sorted(pushed - accepted),
        "pushed requests without a pushed_request.accepted event",
    )
    expect(
        sorted(accepted - pushed),
        "pushed_request.accepted events without their pushed request",
    )

    started = ids({"interaction.started"}, "request_id")
    interaction_requests = {r for _, r in rows["interactions"]}
    expect(
        sorted(interaction_requests - started),
        "interactions (by request_id) without an interaction.started event",
    )
    expect(
        sorted(started - interaction_requests),
        "interaction.started events (by request_id) without an interaction",
    )

    code_issued = ids({"code.issued"}, "grant_id")
    grants = {g for (g,) in rows["grants"]}
    expect(sorted(grants - code_issued), "grants without a code.issued event")
    expect(sorted(code_issued - grants), "code.issued events without their grant")

    redeemed = ids({"token.issued", "code.replayed", "code.redemption_failed"}, "grant_id")
    expect(
        sorted({g for _, g in rows["consumed_codes"]} - redeemed),
        "consumed codes (by grant_id) without a token.issued, code.replayed or "
        "code.redemption_failed event",
    )

    minted = jtis({"token.issued", "token.refreshed"})
    access = {j for j, _ in rows["access_tokens"]}
    expect(
        sorted(access - minted),
        "access tokens (by jti) without a token.issued or token.refreshed event",
    )
    expect(
        sorted(jtis({"token.issued"}) - access),
        "token.issued events whose access_token_jti is not in tokens",
    )
    expect(
        sorted(jtis({"token.refreshed"}) - access),
        "token.refreshed events whose access_token_jti is not in tokens",
    )
    # Each event names the refresh token issued with the access token by a digest prefix.
    refresh_ids = {
        e.data.get("refresh_token_id")
        for e in events
        if e.type in {"token.issued", "token.refreshed"}
    }
    refresh = {d[:32] for d, _ in rows["refresh_tokens"]}
    expect(
        sorted(refresh - refresh_ids),
        "refresh tokens without a token.issued or token.refreshed event naming them",
    )
    return gaps


def census(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, int]:
    return {name: len(found) for name, found in rows.items()}


# -- after the restart ------------------------------------------------------------------------


def send_again(node: Node, sent: Unanswered) -> httpx.Response:
    """An unanswered request, as it was (same cookies, form and credentials), to ``node``."""
    headers = {}
    if sent.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in sent.cookies.items())
    with new_client() as client:
        return client.request(
            sent.method,
            node.url(sent.path),
            params=sent.params,
            data=sent.data,
            auth=sent.auth if sent.auth is not None else httpx.USE_CLIENT_DEFAULT,
            headers=headers,
        )


def killed_log_problems(node: Node) -> str | None:
    log = node.log()
    if "Traceback" in log or "unexpected error" in log:
        return f"the killed server logged an error before it died:\n{log}"
    return None


# -- the test ---------------------------------------------------------------------------------


def test_sigkill_under_load_keeps_state_and_audit_trail_together(instance: Instance) -> None:
    cluster = instance.cluster
    start_nodes(cluster, ["first"])
    (first,) = cluster.nodes
    load = Load(first, cluster)

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="flow") as pool:
        futures = [pool.submit(worker, load, i) for i in range(WORKERS)]
        try:
            time.sleep(LOAD_SECONDS)
            # On a loaded machine the first flow may take longer than LOAD_SECONDS; the kill
            # must come after at least one, so that every kind of state exists.
            first_flow_by = time.monotonic() + FIRST_FLOW_WAIT
            while load.flows < 1 and time.monotonic() < first_flow_by:
                time.sleep(0.05)
            in_flight = load.wait_for_in_flight(IN_FLIGHT_WAIT)
            load.killed.set()
            # With --workers 1, `grantline serve` runs uvicorn in its own process.
            os.kill(first.process.pid, signal.SIGKILL)
            status = first.process.wait(timeout=SHUTDOWN_TIMEOUT)
            cluster.nodes.remove(first)
        finally:
            load.stop.set()
        for future in futures:
            future.result(timeout=WORKER_JOIN_TIMEOUT)

    assert status == -signal.SIGKILL, status
    assert in_flight, f"no request was in flight when the server was killed: {load.answered}"
    assert not load.unexpected, "\n".join(load.unexpected)
    assert load.flows >= 1, f"no flow finished before the kill: {load.answered}"
    reached = [u for u in load.unanswered if u.reached]
    assert reached, f"the kill interrupted no request: {load.unanswered}"
    problem = killed_log_problems(first)
    assert problem is None, problem

    # A new process on the same instance (data directory and database).
    start_nodes(cluster, ["second"])
    (second,) = cluster.nodes

    after_crash = read_database(instance)
    gaps = audit_gaps(after_crash)
    assert not gaps, (
        f"state and audit trail disagree after the crash ({census(after_crash)}; "
        f"{load.flows} flows done, interrupted: {[u.step for u in reached]}):\n" + "\n".join(gaps)
    )
    # Whatever the crash cut short left no hole in the hash chain.
    assert cluster.cli("audit", "verify").startswith("ok: "), census(after_crash)
    # The load got far enough to leave every kind of state behind.
    assert all(census(after_crash)[name] for name in ("grants", "access_tokens")), census(
        after_crash
    )

    # Each request the crash left without an answer, sent again: answered, and not with 5xx.
    retried = [(u, send_again(second, u)) for u in load.unanswered]
    failed = [
        f"{u.step}: {u.method} {u.path} -> {r.status_code}: {r.text[:300]}"
        for u, r in retried
        if r.status_code >= 500
    ]
    assert not failed, "retries of interrupted requests failed:\n" + "\n".join(failed)

    # A fresh flow, start to finish, on the restarted server.
    fresh = Load(second, cluster)
    # A failure is recorded in ``fresh`` and shown below.
    with new_client() as agent, new_client() as person, contextlib.suppress(ServerGone, FlowBroken):
        one_flow(fresh, agent, person, refreshes=1)
    assert not fresh.unexpected, "\n".join(fresh.unexpected)
    assert not fresh.unanswered, fresh.unanswered
    assert fresh.answered == {
        "par": 1,
        "authorize": 1,
        "interaction page": 1,
        "login": 1,
        "consent page": 1,
        "decision": 1,
        "code exchange": 1,
        "refresh": 1,
    }, fresh.answered

    after_retries = read_database(instance)
    gaps = audit_gaps(after_retries)
    assert not gaps, (
        f"state and audit trail disagree after the retries ({census(after_retries)}):\n"
        + "\n".join(gaps)
    )
    verified = cluster.cli("audit", "verify")
    assert verified.startswith(f"ok: {len(after_retries['events'])} events"), verified

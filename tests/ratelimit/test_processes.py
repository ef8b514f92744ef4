"""Two ``grantline serve`` processes on one instance spend one budget: through the database
(SQLite and PostgreSQL) or through Redis. A budget spent on one process is refused on the
other with 429, at once and without waiting for any reconciliation: its last tokens are
taken through the shared store."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from redis import Redis

from tests.integration.cluster_support import (
    Cluster,
    init_cluster,
    postgres_database,
    start_nodes,
)
from tests.integration.support import HTTP_TIMEOUT, new_verifier, s256

pytestmark = pytest.mark.integration

#: The lines ``grantline init`` writes, and what these tests make of them.
PAR_LINE = 'par = { per_client = "60000/min", per_address = "60000/min" }'
TOKEN_LINE = 'token = { per_client = "60000/min", per_address = "60000/min" }'
TIGHT = {
    PAR_LINE: 'par = { per_client = "5/h", per_address = "off" }',
    TOKEN_LINE: 'token = { per_client = "off", per_address = "4/h" }',
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite in the data directory, else a PostgreSQL database for this test."""
    if request.param == "sqlite":
        yield None
        return
    admin_url = os.environ.get("GRANTLINE_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.skip("GRANTLINE_TEST_POSTGRES_URL is not set")
    with postgres_database(admin_url) as url:
        yield url


@contextlib.contextmanager
def cluster_with(
    parent: Path, database_url: str | None, edits: dict[str, str]
) -> Iterator[Cluster]:
    """Nodes ``a`` and ``b`` on one instance whose grantline.toml got ``edits``."""
    cluster = init_cluster(parent / "instance", database_url)
    config = cluster.data_dir / "grantline.toml"
    text = config.read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, f"{old!r} is not once in the config init wrote"
        text = text.replace(old, new)
    config.write_text(text)
    try:
        start_nodes(cluster, ["a", "b"])
        yield cluster
    finally:
        problems = cluster.stop()
    assert not problems, "\n\n".join(problems)


def push(http: httpx.Client, cluster: Cluster, node: str) -> httpx.Response:
    verifier = new_verifier()
    return http.post(
        nodes(cluster)[node] + "/par",
        auth=(cluster.credentials.client_id, cluster.credentials.client_secret),
        data={
            "response_type": "code",
            "redirect_uri": cluster.dev_redirect_uri,
            "scope": "inbox.read",
            "state": "s",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
    )


def refresh(http: httpx.Client, cluster: Cluster, node: str) -> httpx.Response:
    return http.post(
        nodes(cluster)[node] + "/token",
        auth=(cluster.credentials.client_id, cluster.credentials.client_secret),
        data={"grant_type": "refresh_token", "refresh_token": "no-such-token"},
    )


def nodes(cluster: Cluster) -> dict[str, str]:
    return {node.name: node.base_url for node in cluster.nodes}


def assert_refused(response: httpx.Response, max_wait: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert max_wait - 60 <= int(response.headers["retry-after"]) <= max_wait


def spend_on_a_then_refused_on_b(cluster: Cluster) -> None:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        # Per client at /par: 5 an hour.
        assert [push(http, cluster, "a").status_code for _ in range(5)] == [201] * 5
        assert_refused(push(http, cluster, "b"), 720)
        assert_refused(push(http, cluster, "a"), 720)
        # Per address at /token: 4 an hour, whatever the outcome of each request.
        assert [refresh(http, cluster, "b").status_code for _ in range(4)] == [400] * 4
        assert_refused(refresh(http, cluster, "a"), 900)


def stored_keys(cluster: Cluster, database_url: str | None) -> int:
    if database_url is None:
        conn = sqlite3.connect(cluster.data_dir / "grantline.db")
        try:
            return int(conn.execute("SELECT COUNT(*) FROM rate_limits").fetchone()[0])
        finally:
            conn.close()
    with psycopg.connect(database_url) as pg:
        row = pg.execute("SELECT COUNT(*) FROM rate_limits").fetchone()
        assert row is not None
        return int(row[0])


def test_two_processes_share_budgets_through_the_database(
    database_url: str | None, tmp_path: Path
) -> None:
    with cluster_with(tmp_path, database_url, TIGHT) as cluster:
        spend_on_a_then_refused_on_b(cluster)
        # The client's and the address's arrival times, written through at their last token.
        assert stored_keys(cluster, database_url) == 2


def test_two_processes_share_budgets_through_redis(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    edits = {
        **TIGHT,
        '# rate_limit_url = "redis://127.0.0.1:6379/0"': f'rate_limit_url = "{redis_url}"',
        "sync_interval_ms = 200": f'sync_interval_ms = 200\nkey_prefix = "{redis_prefix}"',
    }
    with cluster_with(tmp_path, None, edits) as cluster:
        spend_on_a_then_refused_on_b(cluster)
        assert stored_keys(cluster, None) == 0
        redis = Redis.from_url(redis_url)
        try:
            keys = sorted(k.decode() for k in redis.scan_iter(match=redis_prefix + "*"))
        finally:
            redis.close()
    assert keys == [
        redis_prefix + "par:client:dev-agent",
        redis_prefix + "token:address:127.0.0.1",
    ]

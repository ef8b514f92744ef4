from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from grantline.storage.sql import SQLiteStore
from tests.helpers import CLIENT_SECRET, ISSUER, Agent, new_verifier


async def test_healthz_is_ok_while_the_database_answers(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_is_503_when_the_database_cannot_be_used(
    http: httpx.AsyncClient, store: SQLiteStore
) -> None:
    store._conn.close()
    store._read_conn.close()
    response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert response.headers["retry-after"] == "1"


async def test_a_locked_database_is_temporarily_unavailable_not_a_500(
    app: Starlette,
    store: SQLiteStore,
    db_path: Path,
    agent: Agent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "LOCK_TIMEOUT", 0.05)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.post(
                "/par", data=agent.params(new_verifier()), auth=("agent", CLIENT_SECRET)
            )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"
    # Once the lock is gone the same request works: nothing was half-written.
    assert (await agent.push()).response.status_code == 201


async def test_readyz_needs_an_active_signing_key_of_the_configured_alg(
    http: httpx.AsyncClient, store: SQLiteStore
) -> None:
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    async with store.transaction() as tx:
        (key,) = await tx.list_signing_keys()
        await tx.retire_signing_keys("none-kept", key.alg, 0)
    not_ready = await http.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json() == {"status": "no_signing_key", "alg": "ES256"}


async def test_readyz_is_503_without_a_database(
    http: httpx.AsyncClient, store: SQLiteStore
) -> None:
    store._conn.close()
    store._read_conn.close()
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}

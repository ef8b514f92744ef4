"""Migration 0006 turns an existing audit log into a hash chain, on SQLite and PostgreSQL:
events written before it get links that verify, and a downgrade keeps every event."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import grantline.storage.schema as schema
from grantline.audit import event
from grantline.audit.chain import GENESIS, link
from grantline.audit.verify import verify_chain
from grantline.storage.audit import ChainedEvent
from grantline.storage.schema import open_store, sqlalchemy_url
from tests.storage.conftest import ADMIN_URL, _database_url

#: Rows as versions before 0006 wrote them: ``seq`` has a gap (a PostgreSQL sequence skips
#: the values of rolled-back inserts) and a body is not in today's canonical form.
OLD_EVENTS: list[dict[str, Any]] = [
    {
        "seq": 1,
        "type": "signing_key.created",
        "at": 1_700_000_001,
        "client_id": None,
        "user_id": None,
        "request_id": None,
        "grant_id": None,
        "data": '{"alg":"ES256","kid":"k1"}',
    },
    {
        "seq": 2,
        "type": "token.issued",
        "at": 1_700_000_002,
        "client_id": "agent",
        "user_id": "user-1",
        "request_id": "r" * 64,
        "grant_id": "grant-1",
        "data": '{"scope": "inbox.read", "jti": "j1"}',
    },
    {
        "seq": 5,
        "type": "consent.decided",
        "at": 1_700_000_005,
        "client_id": "agent",
        "user_id": "user-1",
        "request_id": "r" * 64,
        "grant_id": None,
        "data": '{"decision":"approve","note":"héllo ✓"}',
    },
    {
        "seq": 6,
        "type": "grant.revoked",
        "at": 1_700_000_006,
        "client_id": None,
        "user_id": None,
        "request_id": None,
        "grant_id": "grant-1",
        "data": "{}",
    },
]


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def run_sql(url: str, statement: str, rows: list[dict[str, Any]] | None = None) -> list[Any]:
    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), rows or [{}])
            return list(result.fetchall()) if result.returns_rows else []
    finally:
        engine.dispose()


def tables_and_columns(url: str) -> dict[str, set[str]]:
    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        inspector = sa.inspect(engine)
        return {
            t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()
        }
    finally:
        engine.dispose()


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of its own: the shared test database is already at head."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not ADMIN_URL:
        pytest.skip("GRANTLINE_TEST_POSTGRES_URL is not set")
    name = f"grantline_migration_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(ADMIN_URL, name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def at_0005_with_events(database_url: str) -> str:
    command.upgrade(alembic_config(database_url), "0005")
    run_sql(
        database_url,
        "INSERT INTO audit_events (seq, type, at, client_id, user_id, request_id, grant_id, "
        "data) VALUES (:seq, :type, :at, :client_id, :user_id, :request_id, :grant_id, :data)",
        OLD_EVENTS,
    )
    return database_url


async def chained(url: str) -> tuple[list[ChainedEvent], tuple[int, str]]:
    store = open_store(url)
    try:
        async with store.reader() as tx:
            return await tx.chained_events(0, 100), await tx.audit_head()
    finally:
        await store.close()


async def verified(url: str) -> tuple[int, int]:
    """Verify the chain, which must pass; (events, pruned bodies)."""
    store = open_store(url)
    try:
        async with store.reader() as tx:
            report = await verify_chain(tx)
    finally:
        await store.close()
    assert report.ok, report.problems
    return report.events, report.pruned_bodies


async def test_upgrade_to_0006_links_existing_events_so_they_verify(
    at_0005_with_events: str,
) -> None:
    url = at_0005_with_events
    command.upgrade(alembic_config(url), "0006")

    events, head = await chained(url)
    assert [e.event.seq for e in events] == [1, 2, 5, 6]
    prev = GENESIS
    for old, ev in zip(OLD_EVENTS, events, strict=True):
        # The body is kept byte for byte and digested as stored, not as it would be written now.
        assert ev.data_text == old["data"]
        assert ev.body_sha256 == hashlib.sha256(old["data"].encode()).hexdigest()
        assert (ev.event.type, ev.event.at, ev.event.grant_id) == (
            old["type"],
            old["at"],
            old["grant_id"],
        )
        prev = link(prev, ev.entry())
        assert ev.chain_hash == prev
    assert head == (6, prev)
    assert await verified(url) == (4, 0)


async def test_the_chain_goes_on_after_the_migrated_events(at_0005_with_events: str) -> None:
    url = at_0005_with_events
    command.upgrade(alembic_config(url), "0006")
    store = open_store(url)
    try:
        async with store.transaction() as tx:
            await tx.append(event("grant.revoked", 1_700_000_100, grant_id="grant-2"))
    finally:
        await store.close()
    events, head = await chained(url)
    assert [e.event.seq for e in events] == [1, 2, 5, 6, 7]
    assert head == (7, events[-1].chain_hash)
    assert await verified(url) == (5, 0)


async def test_an_empty_log_upgrades_to_the_genesis_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "0006")
    assert await chained(database_url) == ([], (0, GENESIS))
    assert await verified(database_url) == (0, 0)


async def test_downgrade_keeps_every_event_and_marks_pruned_bodies(
    at_0005_with_events: str,
) -> None:
    url = at_0005_with_events
    command.upgrade(alembic_config(url), "0006")
    store = open_store(url)
    try:
        async with store.transaction() as tx:
            assert await tx.prune_event_bodies(1_700_000_003) == 2
    finally:
        await store.close()
    assert await verified(url) == (4, 2)

    command.downgrade(alembic_config(url), "0005")

    tables = tables_and_columns(url)
    assert "audit_head" not in tables
    assert "audit_checkpoints" not in tables
    assert {"body_sha256", "chain_hash"}.isdisjoint(tables["audit_events"])
    rows = run_sql(url, "SELECT seq, type, at, grant_id, data FROM audit_events ORDER BY seq")
    assert [tuple(r) for r in rows] == [
        (1, "signing_key.created", 1_700_000_001, None, '{"body_pruned":true}'),
        (2, "token.issued", 1_700_000_002, "grant-1", '{"body_pruned":true}'),
        (5, "consent.decided", 1_700_000_005, None, OLD_EVENTS[2]["data"]),
        (6, "grant.revoked", 1_700_000_006, "grant-1", "{}"),
    ]

    # Upgrading again chains the events as they now are.
    command.upgrade(alembic_config(url), "0006")
    assert await verified(url) == (4, 0)

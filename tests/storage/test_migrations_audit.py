"""Migration 0006 turns an existing audit log into hash chains, on SQLite and PostgreSQL:
events written before it get lanes, positions and links that verify, and a downgrade keeps
every event."""

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
from grantline.audit.chain import GENESIS, LANES, lane_of, link
from grantline.audit.verify import verify_chain
from grantline.storage.audit import ChainedEvent
from grantline.storage.schema import is_postgres, open_store, sqlalchemy_url
from tests.storage.conftest import ADMIN_URL, _database_url

#: Rows as versions before 0006 wrote them: ``seq`` has gaps (a PostgreSQL sequence skips
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
    {
        "seq": 7,
        "type": "client.registered",
        "at": 1_700_000_007,
        "client_id": "agent",
        "user_id": None,
        "request_id": None,
        "grant_id": None,
        "data": '{"name":"Agent"}',
    },
    {
        "seq": 9,
        "type": "user.added",
        "at": 1_700_000_009,
        "client_id": None,
        "user_id": "user-1",
        "request_id": None,
        "grant_id": None,
        "data": '{"username":"alice"}',
    },
    {
        "seq": 10,
        "type": "token.refreshed",
        "at": 1_700_000_010,
        "client_id": "agent",
        "user_id": "user-1",
        "request_id": "r" * 64,
        "grant_id": "grant-1",
        "data": '{"scope":"inbox.read","jti":"j2"}',
    },
]

#: seq -> (lane, position) after the upgrade. The lanes are pinned in tests/audit/test_chain.py
#: (no id and "r" * 64: lane 2, "grant-1": 9, "agent": 10, "user-1": 4); within a lane the
#: positions follow seq, across the gaps and the other lanes' events.
PLACES = {1: (2, 1), 2: (2, 2), 5: (2, 3), 6: (9, 1), 7: (10, 1), 9: (4, 1), 10: (2, 4)}


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
    if is_postgres(database_url):
        # The old versions took these seqs from the sequence, which is past them.
        run_sql(
            database_url,
            "SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), max(seq)) "
            "FROM audit_events",
        )
    return database_url


async def chained(url: str) -> tuple[list[ChainedEvent], dict[int, tuple[int, str]]]:
    """Every event in seq order, and every lane's head."""
    store = open_store(url)
    try:
        async with store.reader() as tx:
            return await tx.chained_since(0, 100), await tx.audit_heads()
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


def by_lane(events: list[ChainedEvent]) -> dict[int, list[ChainedEvent]]:
    lanes: dict[int, list[ChainedEvent]] = {}
    for ev in sorted(events, key=lambda e: (e.lane, e.position)):
        lanes.setdefault(ev.lane, []).append(ev)
    return lanes


async def test_upgrade_to_0006_chains_existing_events_in_their_lanes_so_they_verify(
    at_0005_with_events: str,
) -> None:
    url = at_0005_with_events
    command.upgrade(alembic_config(url), "0006")

    events, heads = await chained(url)
    assert {e.event.seq: (e.lane, e.position) for e in events} == PLACES
    old_by_seq = {old["seq"]: old for old in OLD_EVENTS}
    for ev in events:
        old = old_by_seq[ev.event.seq]
        # The lane is the one the server gives such an event today, so its line goes on there.
        assert ev.lane == lane_of(
            old["request_id"], old["grant_id"], old["client_id"], old["user_id"]
        )
        # The body is kept byte for byte and digested as stored, not as it would be written now.
        assert ev.data_text == old["data"]
        assert ev.body_sha256 == hashlib.sha256(old["data"].encode()).hexdigest()
        assert (ev.event.type, ev.event.at, ev.event.request_id, ev.event.grant_id) == (
            old["type"],
            old["at"],
            old["request_id"],
            old["grant_id"],
        )
    lanes = by_lane(events)
    for chain in lanes.values():
        prev = GENESIS
        for ev in chain:
            prev = link(prev, ev.entry())
            assert ev.chain_hash == prev
    # One head row per lane: at the newest event of the lanes that have one, else at genesis.
    assert heads == {
        lane: (len(lanes[lane]), lanes[lane][-1].chain_hash) if lane in lanes else (0, GENESIS)
        for lane in range(LANES)
    }
    assert await verified(url) == (7, 0)


async def test_each_lane_goes_on_after_the_migrated_events(at_0005_with_events: str) -> None:
    url = at_0005_with_events
    command.upgrade(alembic_config(url), "0006")
    _, before = await chained(url)
    store = open_store(url)
    try:
        async with store.transaction() as tx:
            await tx.append(event("token.revoked", 1_700_000_100, request_id="r" * 64))
            await tx.append(event("grant.revoked", 1_700_000_101, grant_id="grant-1"))
            await tx.append(event("user.removed", 1_700_000_102, user_id="user-2"))
    finally:
        await store.close()
    events, heads = await chained(url)
    new = events[len(OLD_EVENTS) :]
    assert [e.event.seq for e in new] == [11, 12, 13]
    assert [(e.lane, e.position) for e in new] == [
        (2, 5),
        (9, 2),
        (lane_of("user-2", None, None, None), 1),
    ]
    lanes = by_lane(events)
    assert heads[2] == (5, lanes[2][-1].chain_hash)
    assert lanes[2][-1].chain_hash == link(before[2][1], lanes[2][-1].entry())
    assert heads[9] == (2, lanes[9][-1].chain_hash)
    assert await verified(url) == (10, 0)


async def test_an_empty_log_upgrades_to_every_lane_at_genesis(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "0006")
    assert await chained(database_url) == ([], {lane: (0, GENESIS) for lane in range(LANES)})
    assert await verified(database_url) == (0, 0)


async def test_a_lane_position_is_held_by_one_event_only(at_0005_with_events: str) -> None:
    """The unique index: two events can never share a place in a lane, so an appender that
    lost track of its head fails instead of forking the lane."""
    url = at_0005_with_events
    command.upgrade(alembic_config(url), "0006")
    with pytest.raises(sa.exc.IntegrityError):
        run_sql(
            url,
            "INSERT INTO audit_events (type, at, data, body_sha256, chain_hash, lane, position) "
            "VALUES ('grant.revoked', 1, '{}', :digest, :link, 2, 3)",
            [{"digest": "0" * 64, "link": "0" * 64}],
        )
    assert [tuple(r) for r in run_sql(url, "SELECT count(*) FROM audit_events")] == [(7,)]


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
    assert await verified(url) == (7, 2)

    command.downgrade(alembic_config(url), "0005")

    tables = tables_and_columns(url)
    assert "audit_head" not in tables
    assert "audit_checkpoints" not in tables
    assert {"lane", "position", "body_sha256", "chain_hash"}.isdisjoint(tables["audit_events"])
    rows = run_sql(url, "SELECT seq, type, at, grant_id, data FROM audit_events ORDER BY seq")
    assert [tuple(r) for r in rows] == [
        (1, "signing_key.created", 1_700_000_001, None, '{"body_pruned":true}'),
        (2, "token.issued", 1_700_000_002, "grant-1", '{"body_pruned":true}'),
        *((e["seq"], e["type"], e["at"], e["grant_id"], e["data"]) for e in OLD_EVENTS[2:]),
    ]

    # Upgrading again chains the events as they now are, in the same places.
    command.upgrade(alembic_config(url), "0006")
    assert await verified(url) == (7, 0)
    events, _ = await chained(url)
    assert {e.event.seq: (e.lane, e.position) for e in events} == PLACES

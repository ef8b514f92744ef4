"""Schema migrations: ``upgrade`` builds every table, is idempotent, and ``check_schema`` tells."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import grantline.storage.schema as schema
from grantline.models import Client
from grantline.storage.schema import SchemaOutdated, check_schema, open_store, sqlite_path, upgrade

TABLES = {
    "clients",
    "users",
    "authorization_requests",
    "interactions",
    "sessions",
    "grants",
    "authorization_codes",
    "tokens",
    "signing_keys",
    "audit_events",
    "replay_cache",
    "audit_head",
    "audit_checkpoints",
    "rate_limits",
    "sign_in_counters",
    "client_generation",
}


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def tables_in(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}


def revision_of(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def head() -> str:
    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    rev = ScriptDirectory.from_config(config).get_current_head()
    assert rev is not None
    return rev


def downgrade_to_base(path: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    config.set_main_option("sqlalchemy.url", url_of(path))
    command.downgrade(config, "base")


def test_upgrade_on_a_new_file_creates_every_table(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    upgrade(url_of(path))
    assert path.exists()
    assert tables_in(path) == TABLES | {"alembic_version"}
    assert revision_of(path) == head()


def test_upgrade_creates_the_lookup_indexes(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    upgrade(url_of(path))
    conn = sqlite3.connect(path)
    try:
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    finally:
        conn.close()
    assert {
        "ix_audit_events_request_id",
        "ix_audit_events_grant_id",
        "ix_tokens_grant_id",
    } <= indexes


async def test_upgrade_twice_is_harmless_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    upgrade(url_of(path))
    store = open_store(url_of(path))
    client = Client("agent", "Agent", "none", ("https://agent.example/cb",))
    try:
        async with store.transaction() as tx:
            await tx.add_client(client)
    finally:
        await store.close()

    upgrade(url_of(path))

    assert tables_in(path) == TABLES | {"alembic_version"}
    assert revision_of(path) == head()
    check_schema(url_of(path))
    store = open_store(url_of(path))
    try:
        async with store.reader() as tx:
            assert await tx.list_clients() == [client]
    finally:
        await store.close()


def test_check_schema_raises_on_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(SchemaOutdated) as info:
        check_schema(url_of(path))
    message = str(info.value)
    assert "none" in message
    assert head() in message
    assert "grantline init" in message
    assert "grantline db upgrade" in message


def test_check_schema_passes_after_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(SchemaOutdated):
        check_schema(url_of(path))
    upgrade(url_of(path))
    check_schema(url_of(path))  # must not raise


def test_check_schema_raises_after_a_downgrade(tmp_path: Path) -> None:
    path = tmp_path / "down.db"
    upgrade(url_of(path))
    downgrade_to_base(path)
    assert tables_in(path) == {"alembic_version"}
    with pytest.raises(SchemaOutdated):
        check_schema(url_of(path))


def test_check_schema_raises_on_an_unknown_revision(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    upgrade(url_of(path))
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("UPDATE alembic_version SET version_num = 'from-the-future'")
    finally:
        conn.close()
    with pytest.raises(SchemaOutdated, match="from-the-future"):
        check_schema(url_of(path))


def test_migrated_fixture_database_is_at_head(db_path: Path) -> None:
    check_schema(url_of(db_path))
    assert revision_of(db_path) == head()


def test_sqlite_path_and_unsupported_urls() -> None:
    assert sqlite_path("sqlite:////var/lib/grantline.db") == "/var/lib/grantline.db"
    assert sqlite_path("sqlite:///relative.db") == "relative.db"
    with pytest.raises(ValueError, match="unsupported database URL"):
        sqlite_path("postgresql://localhost/grantline")
    with pytest.raises(ValueError, match="unsupported database URL"):
        open_store("mysql://localhost/grantline")

"""Schema migrations (Alembic) and opening the configured store."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from grantline.storage.sql import SQLiteStore

__all__ = ["SchemaOutdated", "check_schema", "open_store", "sqlite_path", "upgrade"]

_MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutdated(RuntimeError):
    """The database is missing or not at the newest migration."""


def sqlite_path(database_url: str) -> str:
    """The file behind a ``sqlite:///`` URL; other databases are not supported yet."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(f"unsupported database URL {database_url!r}: use sqlite:///PATH")
    return database_url[len(prefix) :]


def _alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str) -> None:
    """Apply every pending migration; a database at the newest one is left untouched."""
    command.upgrade(_alembic_config(database_url), "head")


def check_schema(database_url: str) -> None:
    """Raise ``SchemaOutdated`` unless the database is at the newest migration."""
    head = ScriptDirectory.from_config(_alembic_config(database_url)).get_current_head()
    if not Path(sqlite_path(database_url)).exists():
        raise SchemaOutdated(f"no database at {database_url}: run `grantline init`")
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    if current != head:
        raise SchemaOutdated(
            f"the database is at schema revision {current or 'none'}, this Grantline needs "
            f"{head}: run `grantline init` (or `grantline db upgrade`)"
        )


def open_store(database_url: str) -> SQLiteStore:
    return SQLiteStore(sqlite_path(database_url))

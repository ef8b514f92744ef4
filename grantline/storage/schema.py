"""Schema migrations (Alembic) and opening the configured store."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from grantline.storage import Store
from grantline.storage.sql import SQLiteStore

__all__ = [
    "SchemaOutdated",
    "check_schema",
    "is_postgres",
    "open_store",
    "sqlalchemy_url",
    "sqlite_path",
    "upgrade",
]

_POSTGRES_PREFIXES = ("postgresql://", "postgres://")

_MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutdated(RuntimeError):
    """The database is missing or not at the newest migration."""


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(_POSTGRES_PREFIXES)


def sqlite_path(database_url: str) -> str:
    """The file behind a ``sqlite:///`` URL."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(
            f"unsupported database URL {database_url!r}: use sqlite:///PATH or postgresql://..."
        )
    return database_url[len(prefix) :]


def sqlalchemy_url(database_url: str) -> str:
    """The URL SQLAlchemy (migrations only) uses: PostgreSQL through psycopg 3."""
    if is_postgres(database_url):
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    sqlite_path(database_url)
    return database_url


def _alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # ConfigParser interpolation would read a "%" in a password as a reference.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Apply every pending migration; a database at the newest one is left untouched."""
    command.upgrade(_alembic_config(database_url), "head")


def check_schema(database_url: str) -> None:
    """Raise ``SchemaOutdated`` unless the database is at the newest migration."""
    head = ScriptDirectory.from_config(_alembic_config(database_url)).get_current_head()
    if not is_postgres(database_url) and not Path(sqlite_path(database_url)).exists():
        raise SchemaOutdated(f"no database at {database_url}: run `grantline init`")
    engine = create_engine(sqlalchemy_url(database_url))
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


def open_store(database_url: str) -> Store:
    if is_postgres(database_url):
        from grantline.storage.postgres import PostgresStore

        return PostgresStore(database_url)
    return SQLiteStore(sqlite_path(database_url))

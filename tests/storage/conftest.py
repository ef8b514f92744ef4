"""The storage contract runs on SQLite and on PostgreSQL.

PostgreSQL tests need ``GRANTLINE_TEST_POSTGRES_URL`` (an account that may create databases,
e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``); ``.ci/run`` sets it, so in CI an
unreachable server fails the run instead of skipping. Each test session creates its own
database, migrates it, and drops it at the end; each test starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest

from grantline.audit.chain import GENESIS, LANES
from grantline.storage import Store
from grantline.storage.postgres import PostgresStore, to_dollar_params
from grantline.storage.schema import upgrade
from grantline.storage.sql import SQLiteStore
from grantline.tokens.keys import create_signing_key
from tests.conftest import SECRET_KEY

ADMIN_URL = os.environ.get("GRANTLINE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]


def _database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not ADMIN_URL:
        pytest.skip("GRANTLINE_TEST_POSTGRES_URL is not set")
    name = f"grantline_test_{secrets.token_hex(4)}"

    def admin(sql: str) -> None:
        # Sync on purpose: the first test to need this may already run inside an event loop.
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    admin(f'CREATE DATABASE "{name}"')
    url = _database_url(ADMIN_URL, name)
    try:
        upgrade(url)
        yield url
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _empty_tables(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
        # The lane heads are the rows an empty log has.
        await conn.executemany(
            "INSERT INTO audit_head (lane, position, hash) VALUES ($1, 0, $2)",
            [(lane, GENESIS) for lane in range(LANES)],
        )
        # And the client generation counter its one row.
        await conn.execute("INSERT INTO client_generation (id, value) VALUES (1, 0)")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def open_backend(
    backend: str, db_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[type[object]]:
    """A factory of stores on the test's database (several may be open, like processes)."""
    opened: list[Store] = []
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        await _empty_tables(url)

        def make() -> Store:
            store: Store = PostgresStore(url)
            opened.append(store)
            return store

        first = make()
        # Like the SQLite template, the database starts with one signing key.
        async with first.transaction() as tx:
            await create_signing_key(tx, 0, "ES256", secret=SECRET_KEY)
    else:

        def make() -> Store:
            store: Store = SQLiteStore(str(db_path))
            opened.append(store)
            return store

    yield make  # type: ignore[misc]
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_backend: type[object]) -> Store:
    return open_backend()  # type: ignore[no-any-return, call-arg]


#: Runs one SQL statement on a connection of its own, as another process would.
Tamper = Callable[..., Awaitable[None]]


@pytest.fixture
def database_url(backend: str, db_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{db_path}"


@pytest.fixture
async def tamper(store: Store, backend: str, database_url: str) -> Tamper:
    """Run one SQL statement (``?`` placeholders) on a connection of its own, autocommitted;
    ``store`` is requested first so the PostgreSQL tables are emptied before the test."""

    async def run(sql: str, *args: object) -> None:
        if backend == "postgresql":
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(to_dollar_params(sql), *args)
            finally:
                await conn.close()
        else:
            raw = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                raw.execute(sql, args)
            finally:
                raw.close()

    return run

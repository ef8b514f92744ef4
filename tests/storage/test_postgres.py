"""PostgreSQL specifics; the storage contract itself runs on both databases in test_sql.py."""

from __future__ import annotations

import psycopg
import pytest

from grantline.storage.postgres import PostgresStore, _rowcount, to_dollar_params
from grantline.storage.schema import (
    SchemaOutdated,
    check_schema,
    is_postgres,
    open_store,
    sqlalchemy_url,
)
from tests.storage.conftest import ADMIN_URL, _database_url


def test_placeholders_become_numbered() -> None:
    assert to_dollar_params("SELECT a FROM t WHERE b = ? AND c > ?") == (
        "SELECT a FROM t WHERE b = $1 AND c > $2"
    )
    assert to_dollar_params("SELECT 1") == "SELECT 1"


@pytest.mark.parametrize(
    ("status", "count"),
    [("UPDATE 1", 1), ("INSERT 0 1", 1), ("DELETE 0", 0), ("INSERT 0 0", 0), ("SELECT", 0)],
)
def test_rowcount_comes_from_the_command_tag(status: str, count: int) -> None:
    assert _rowcount(status) == count


def test_urls_select_the_backend() -> None:
    url = "postgresql://user:p%40ss@db.example:5432/grantline"
    assert is_postgres(url) and is_postgres("postgres://h/db")
    assert not is_postgres("sqlite:///x.db")
    assert sqlalchemy_url(url) == "postgresql+psycopg://user:p%40ss@db.example:5432/grantline"
    assert isinstance(open_store(url), PostgresStore)
    with pytest.raises(ValueError, match="unsupported database URL"):
        sqlalchemy_url("mysql://x/y")


def test_schema_check_on_postgres(postgres_url: str) -> None:
    check_schema(postgres_url)  # migrated by the fixture
    assert ADMIN_URL is not None
    empty = _database_url(ADMIN_URL, postgres_url.rsplit("/", 1)[1] + "_empty")
    name = empty.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        with pytest.raises(SchemaOutdated, match="grantline init"):
            check_schema(empty)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


async def test_lock_grant_makes_a_second_writer_wait(postgres_url: str) -> None:
    import asyncio

    from grantline.models import Grant
    from tests.storage.conftest import _empty_tables

    await _empty_tables(postgres_url)
    first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        async with first.transaction() as tx:
            await tx.add_grant(Grant("g", "agent", "u", (), "req", 0))
        order: list[str] = []

        async def contender() -> None:
            async with second.transaction() as tx:
                await tx.lock_grant("g")
                order.append("second locked")

        async with first.transaction() as tx:
            await tx.lock_grant("g")
            waiting = asyncio.create_task(contender())
            await asyncio.sleep(0.3)
            order.append("first still holds it")
        await asyncio.wait_for(waiting, 5)
        assert order == ["first still holds it", "second locked"]
    finally:
        await first.close()
        await second.close()

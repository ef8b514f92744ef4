"""Fixtures shared by the whole suite: a real SQLite store, a frozen clock, the app, and
registered clients and users."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from grantline.app import create_app
from grantline.models import AuthMethod, Client, User
from grantline.passwords import hash_password
from grantline.settings import Settings
from grantline.storage.schema import upgrade
from grantline.storage.sql import SQLiteStore
from grantline.tokens.digest import Digester
from grantline.tokens.keys import create_signing_key
from tests.helpers import (
    CLIENT_SECRET,
    EXAMPLE_TYPES,
    ISSUER,
    PASSWORD,
    REDIRECT_URI,
    USERNAME,
    Agent,
    FrozenClock,
)

SECRET_KEY = b"k" * 32


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database file; each test gets a copy (Alembic is slow to run per test)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")

    async def add_key() -> None:
        store = SQLiteStore(str(path))
        async with store.transaction() as tx:
            await create_signing_key(tx, 0, "ES256", secret=SECRET_KEY)
        await store.close()

    asyncio.run(add_key())
    return path


@pytest.fixture
def db_path(migrated_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "grantline.db"
    shutil.copy(migrated_db, path)
    return path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return Settings(
        issuer=ISSUER,
        database_url=f"sqlite:///{db_path}",
        secret_key=SECRET_KEY,
        authorization_details_types=EXAMPLE_TYPES,
    )


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(str(db_path))
    yield store
    store._conn.close()
    store._read_conn.close()


@pytest.fixture
def digester() -> Digester:
    return Digester(SECRET_KEY)


async def add_client(
    store: SQLiteStore,
    *,
    client_id: str = "agent",
    auth_method: AuthMethod = "client_secret_basic",
    secret: str | None = CLIENT_SECRET,
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    **policy: object,
) -> Client:
    digest = None
    if auth_method != "none" and secret is not None:
        digest = Digester(SECRET_KEY).digest("client_secret", secret)
    client = Client(
        client_id=client_id,
        name=str(policy.pop("name", "Invoice Agent")),
        auth_method=auth_method,
        redirect_uris=redirect_uris,
        secret_digest=digest,
        **policy,  # type: ignore[arg-type]
    )
    async with store.transaction() as tx:
        await tx.add_client(client)
    return client


_PASSWORD_HASH = hash_password(PASSWORD)


async def add_user(store: SQLiteStore, username: str = USERNAME) -> User:
    user = User(secrets.token_hex(8), username, _PASSWORD_HASH, 0)
    async with store.transaction() as tx:
        await tx.add_user(user)
    return user


@pytest.fixture
async def client(store: SQLiteStore) -> Client:
    return await add_client(store)


@pytest.fixture
async def user(store: SQLiteStore) -> User:
    return await add_user(store)


def build_app(settings: Settings, store: SQLiteStore, clock: FrozenClock) -> Starlette:
    return create_app(settings, store, clock=clock)


@pytest.fixture
def app(settings: Settings, store: SQLiteStore, clock: FrozenClock) -> Starlette:
    return build_app(settings, store, clock)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


@pytest.fixture
async def agent(http: httpx.AsyncClient, client: Client, user: User) -> Agent:
    return Agent(http)

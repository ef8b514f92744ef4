"""PostgreSQL going away under a running server: fast 503s, then recovery without a restart.

The database is reached through a TCP proxy in the test, so "PostgreSQL stops" is the proxy
closing its listener and cutting every connection, without touching the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from grantline.app import create_app
from grantline.settings import Settings
from grantline.storage.postgres import PostgresStore
from grantline.tokens.keys import create_signing_key
from tests.conftest import SECRET_KEY, add_client
from tests.helpers import ISSUER, Agent, FrozenClock
from tests.storage.conftest import _empty_tables


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL until told to go down."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy()
    await proxy.up()
    yield proxy
    with contextlib.suppress(AssertionError):
        await proxy.down()


async def test_requests_fail_fast_while_postgres_is_away_and_recover_after(
    postgres_url: str, proxy: TcpProxy, settings: Settings, clock: FrozenClock
) -> None:
    await _empty_tables(postgres_url)
    base, _, name = postgres_url.rpartition("/")
    via_proxy = f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}"
    store = PostgresStore(via_proxy)
    async with store.transaction() as tx:
        await create_signing_key(tx, 0, "ES256", secret=SECRET_KEY)
    await add_client(store)  # type: ignore[arg-type]
    app = create_app(dataclasses.replace(settings, database_url=via_proxy), store, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            agent = Agent(http)
            assert (await agent.push()).response.status_code == 201

            # Load while the database goes away: 20 pushes in flight when it disappears.
            in_flight = [
                asyncio.create_task(agent.push_raw(agent.params("v" * 43))) for _ in range(20)
            ]
            await asyncio.sleep(0)
            await proxy.down()
            during = await asyncio.gather(*in_flight)
            assert {r.status_code for r in during} <= {201, 503}
            assert all(
                r.json()["error"] == "temporarily_unavailable"
                for r in during
                if r.status_code == 503
            )
            started = time.monotonic()
            refused = await agent.push_raw(agent.params("v" * 43))
            health = await http.get("/healthz")
            elapsed = time.monotonic() - started
            assert refused.status_code == 503
            assert refused.json()["error"] == "temporarily_unavailable"
            assert refused.headers["retry-after"] == "1"
            assert "Traceback" not in refused.text
            assert health.status_code == 503
            assert elapsed < 12  # fails fast rather than hanging on the dead connections

            await proxy.up()  # same port: the server reconnects by itself
            assert (await agent.push()).response.status_code == 201
            assert (await http.get("/healthz")).status_code == 200
        # Nothing half-written: every stored pushed request has its audit event.
        async with store.reader() as tx:
            accepted = {
                e.request_id for e in await tx.tail(1000) if e.type == "pushed_request.accepted"
            }
        ok = sum(1 for r in during if r.status_code == 201) + 2
        assert len(accepted) == ok
    finally:
        await store.close()

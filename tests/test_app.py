"""The app factory that `grantline serve` hands to uvicorn, and the dev-only callback page."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from grantline.app import app_from_environment, create_app
from grantline.cli import main
from grantline.settings import Settings
from grantline.storage.schema import SchemaOutdated
from grantline.storage.sql import SQLiteStore
from tests.helpers import ISSUER, FrozenClock


def test_factory_serves_the_instance_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(main, ["init", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("GRANTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GRANTLINE_SERVE_URL", "http://127.0.0.1:9123")
    app = app_from_environment()
    assert app.state.context.settings.issuer == "http://127.0.0.1:9123"
    app.state.context.store._conn.close()
    app.state.context.store._read_conn.close()


def test_factory_refuses_an_uninitialized_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "grantline.toml").write_text('database_url = "sqlite:///empty.db"\n')
    (tmp_path / "secret.key").write_text("ab" * 32)
    monkeypatch.setenv("GRANTLINE_DATA_DIR", str(tmp_path))
    with pytest.raises(SchemaOutdated, match="grantline init"):
        app_from_environment()


async def test_dev_callback_shows_the_code_and_escapes_it(
    settings: Settings, store: SQLiteStore, clock: FrozenClock
) -> None:
    app = create_app(dataclasses.replace(settings, dev_mode=True), store, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        page = await http.get("/dev/callback", params={"code": "<b>c0de</b>", "state": "s"})
        error = await http.get("/dev/callback", params={"error": "access_denied"})
    assert page.status_code == 200
    assert '<code id="code">&lt;b&gt;c0de&lt;/b&gt;</code>' in page.text
    assert "development instances" in page.text
    assert '<code id="error">access_denied</code>' in error.text


async def test_lifespan_closes_the_store(settings: Settings, store: SQLiteStore) -> None:
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        await store.ping()
    with pytest.raises(Exception, match="closed"):
        await store.ping()


async def test_startup_puts_what_lives_as_long_as_the_process_out_of_the_collectors_reach(
    settings: Settings, store: SQLiteStore
) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = create_app(settings, store)
    try:
        async with app.router.lifespan_context(app):
            # The modules, settings and the app itself, no longer walked by full collections.
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


async def test_hsts_only_over_https(settings: Settings, store: SQLiteStore) -> None:
    secure = dataclasses.replace(settings, issuer="https://as.example")
    transport = httpx.ASGITransport(app=create_app(secure, store))
    async with httpx.AsyncClient(transport=transport, base_url="https://as.example") as http:
        response = await http.get("/.well-known/oauth-authorization-server")
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    plain = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=plain, base_url=ISSUER) as http:
        response = await http.get("/.well-known/oauth-authorization-server")
    assert "strict-transport-security" not in response.headers

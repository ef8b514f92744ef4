"""Fixtures that run the real server: ``grantline init --dev`` then ``grantline serve`` as a
subprocess on a free port of 127.0.0.1, stopped (SIGTERM, then SIGKILL) afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.integration.browser_support import launch_chromium
from tests.integration.cluster_support import postgres_database
from tests.integration.support import GrantlineServer, ServerFactory


def _stop_all(factory: ServerFactory) -> None:
    problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def grantline_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerFactory]:
    """Start fresh servers inside one test, e.g. ``grantline_server_factory(require_par=False)``
    (which rewrites ``require_pushed_authorization_requests`` in grantline.toml before serving).
    Every server is stopped when the test ends; one that logged a traceback fails the test."""
    factory = ServerFactory(tmp_path_factory.mktemp("grantline"))
    try:
        yield factory
    finally:
        _stop_all(factory)


@pytest.fixture(scope="module")
def grantline_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrantlineServer]:
    """One server with the default configuration (PAR required), shared by a test module."""
    factory = ServerFactory(tmp_path_factory.mktemp("grantline"))
    try:
        yield factory()
    finally:
        _stop_all(factory)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium for the browser tests; module-scoped so that it is checked for before
    the server starts (name it before ``grantline_server``)."""
    with launch_chromium() as browser:
        yield browser


#: Admin URL of a PostgreSQL server that may create databases; CI sets it.
ADMIN_URL_VARIABLE = "GRANTLINE_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (the file init creates in the data directory), else a PostgreSQL
    database made for this test and dropped after it."""
    if request.param == "sqlite":
        yield None
        return
    admin_url = os.environ.get(ADMIN_URL_VARIABLE)
    if not admin_url:
        pytest.skip(f"{ADMIN_URL_VARIABLE} is not set")
    with postgres_database(admin_url) as url:
        yield url

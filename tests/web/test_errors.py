"""Anything unexpected becomes server_error with a fixed message, never a stack trace."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from grantline.storage.sql import SQLiteStore
from tests.helpers import ISSUER, Agent


async def test_unexpected_failure_is_a_fixed_server_error(
    app: Starlette, store: SQLiteStore, agent: Agent
) -> None:
    store._conn.close()  # the database disappears under the server
    store._read_conn.close()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        response = await http.post("/par", data={"x": "1"}, auth=("agent", "secret"))
    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "error_description": "The server encountered an unexpected condition.",
    }
    assert "Traceback" not in response.text
    assert "sqlite" not in response.text.lower()


async def test_unexpected_failure_on_a_page_is_an_error_page(
    app: Starlette, store: SQLiteStore
) -> None:
    store._conn.close()
    store._read_conn.close()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        response = await http.get("/authorize", params={"client_id": "a", "request_uri": "u"})
    assert response.status_code == 500
    assert '<code id="error-code">server_error</code>' in response.text
    assert "Traceback" not in response.text


async def test_unknown_path_is_404_in_the_error_shape(http: httpx.AsyncClient) -> None:
    response = await http.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "invalid_request"


async def test_dev_callback_is_absent_unless_dev_mode(http: httpx.AsyncClient) -> None:
    assert (await http.get("/dev/callback?code=x")).status_code == 404

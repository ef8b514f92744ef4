from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.helpers import Agent


async def test_malformed_content_length_is_refused(agent: Agent) -> None:
    response = await agent.http.post(
        "/par",
        content=b"a=1",
        headers={"content-type": "application/x-www-form-urlencoded", "content-length": "x"},
        auth=("agent", "s"),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_streamed_body_without_length_is_cut_at_the_limit(agent: Agent) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"a" * 1024

    response = await agent.http.post(
        "/par",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=("agent", "s"),
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_form_with_charset_parameter_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/token",
        content=b"grant_type=password",
        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
        auth=("nobody", "x"),
    )
    assert response.status_code == 401

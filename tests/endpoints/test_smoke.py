from __future__ import annotations

from tests.helpers import Agent


async def test_full_flow_issues_tokens(agent: Agent) -> None:
    code, verifier = await agent.code_for()
    response = await agent.exchange(code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "inbox.read"

"""One end-to-end run in a real browser: Debian's Chromium driven by Playwright signs in,
reads the consent page and approves; the test, as the client, pushes the request and redeems
the code.

Without Chromium the test is skipped, unless GRANTLINE_REQUIRE_BROWSER is set (as in CI), in
which case it fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.integration.browser_support import new_page, open_authorization, sign_in
from tests.integration.support import (
    GrantlineServer,
    agent_client,
    exchange_code,
    push_dev,
    query_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_person_approves_in_chromium(
    chromium: Browser, grantline_server: GrantlineServer, tmp_path: Path
) -> None:
    server = grantline_server
    creds = server.credentials

    with agent_client() as agent:
        pushed = push_dev(agent, server, scope="inbox.read invoices.pay")

        with new_page(chromium) as page:
            # Login page.
            open_authorization(page, server, creds.client_id, pushed.request_uri)
            sign_in(page, server)

            # Consent page.
            expect(page.locator("#client-name")).to_be_visible()
            expect(page.locator("#client-name")).to_have_text("Example agent (development only)")
            scope_texts = page.locator(".scope-text")
            expect(scope_texts).to_have_text(
                ["Read messages in your inbox", "Pay invoices on your behalf"]
            )
            for i in range(2):
                expect(scope_texts.nth(i)).to_be_visible()
            page.screenshot(path=str(tmp_path / "consent.png"), full_page=True)
            page.click("button[value=approve]")

            # The dev callback page.
            page.wait_for_url(re.compile(re.escape(server.dev_redirect_uri) + r"\?.+"))
            expect(page.locator("#code")).to_be_visible()
            answer = query_of(page.url)
            expect(page.locator("#code")).to_have_text(answer["code"])
            expect(page.locator("#state")).to_have_text(pushed.state)
            expect(page.locator("#iss")).to_have_text(server.issuer)
            code = page.locator("#code").inner_text()

        response = exchange_code(
            agent,
            server,
            code,
            pushed,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
        )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["access_token"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "inbox.read invoices.pay"
    assert (tmp_path / "consent.png").stat().st_size > 0

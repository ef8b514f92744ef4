"""One end-to-end run in a real browser: Debian's Chromium driven by Playwright signs in,
reads the consent page and approves; the test, as the client, pushes the request and redeems
the code.

Without Chromium the test is skipped, unless GRANTLINE_REQUIRE_BROWSER is set (as in CI), in
which case it fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.integration.support import (
    GrantlineServer,
    agent_client,
    exchange_code,
    push_dev,
    query_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds, for every Playwright wait.
BROWSER_TIMEOUT_MS = 15_000


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("GRANTLINE_REQUIRE_BROWSER"):
            pytest.fail(f"{message}, and GRANTLINE_REQUIRE_BROWSER is set", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium; module-scoped so that it is checked for before the server starts."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=BROWSER_TIMEOUT_MS,
        )
        try:
            yield browser
        finally:
            browser.close()


def test_person_approves_in_chromium(
    chromium: Browser, grantline_server: GrantlineServer, tmp_path: Path
) -> None:
    server = grantline_server
    creds = server.credentials

    with agent_client() as agent:
        pushed = push_dev(agent, server, scope="inbox.read invoices.pay")

        context = chromium.new_context()
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        context.set_default_navigation_timeout(BROWSER_TIMEOUT_MS)
        try:
            page = context.new_page()
            query = urlencode({"client_id": creds.client_id, "request_uri": pushed.request_uri})
            page.goto(server.url(f"/authorize?{query}"))

            # Login page.
            expect(page).to_have_url(re.compile(re.escape(server.url("/interaction/")) + ".+"))
            expect(page.locator("h1")).to_have_text("Sign in")
            page.fill("input[name=username]", creds.username)
            page.fill("input[name=password]", creds.password)
            page.get_by_role("button", name="Sign in").click()

            # Consent page.
            expect(page.locator("h1")).to_have_text("Approve access?")
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
        finally:
            context.close()

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

"""Debian's Chromium driven by Playwright, for the browser tests: found (or the test skipped, or
failed when GRANTLINE_REQUIRE_BROWSER is set), launched headless, given pages whose every wait
is bounded, and taken through /authorize and the login page.

The ``chromium`` fixture built on these is in ``conftest.py``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.integration.support import GrantlineServer

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


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Headless Chromium, closed afterwards; skips (or fails) the test when it is missing."""
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


@contextmanager
def new_page(chromium: Browser, *, bypass_csp: bool = False) -> Iterator[Page]:
    """A page in a fresh context (its own cookies), with every wait bounded."""
    context = chromium.new_context(bypass_csp=bypass_csp)
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    context.set_default_navigation_timeout(BROWSER_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def open_authorization(
    page: Page, server: GrantlineServer, client_id: str, request_uri: str
) -> None:
    """Go to /authorize with only client_id and request_uri; lands on the login page."""
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    page.goto(server.url(f"/authorize?{query}"))
    expect(page).to_have_url(re.compile(re.escape(server.url("/interaction/")) + ".+"))
    expect(page.locator("h1")).to_have_text("Sign in")


def sign_in(page: Page, server: GrantlineServer) -> None:
    """Sign in as the dev user from the login page; lands on the consent page."""
    creds = server.credentials
    page.fill("input[name=username]", creds.username)
    page.fill("input[name=password]", creds.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("Approve access?")

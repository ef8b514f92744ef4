"""The newcomer's demo (``examples/payment_demo/demo.py``), run as documented, with a real
Chromium playing the person who approves the payment."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.integration.browser_support import new_page
from tests.integration.support import free_port

DEMO = Path(__file__).resolve().parents[2] / "examples" / "payment_demo" / "demo.py"

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_the_demo_pays_inside_the_grant_refuses_outside_and_traces_the_line(
    chromium: Browser, tmp_path: Path
) -> None:
    ports = [str(free_port()) for _ in range(3)]
    demo = subprocess.Popen(
        [
            sys.executable,
            str(DEMO),
            "--data-dir",
            str(tmp_path / "demo"),
            "--as-port",
            ports[0],
            "--api-port",
            ports[1],
            "--callback-port",
            ports[2],
            "--wait",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert demo.stdout is not None
        for text in demo.stdout:
            lines.put(text)
        lines.put(None)

    pumping = threading.Thread(target=pump, daemon=True)
    pumping.start()
    output: list[str] = []
    try:
        url = password = None
        while password is None:
            text = lines.get(timeout=60)
            assert text is not None, "".join(output)
            output.append(text)
            if text.startswith("AUTHORIZE URL: "):
                url = text.removeprefix("AUTHORIZE URL: ").strip()
            if match := re.search(r"password (\S+) and approve", text):
                password = match.group(1)
        assert url is not None
        with new_page(chromium) as page:
            page.goto(url)
            page.fill("input[name=username]", "dev-user")
            page.fill("input[name=password]", password)
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("h1")).to_have_text("Approve access?")
            expect(page.locator("body")).to_contain_text("Merchant A")
            expect(page.locator("body")).to_contain_text("42.00")
            page.get_by_role("button", name="Approve").click()
            expect(page.locator("body")).to_contain_text("Approved. You can close this page.")
        while (text := lines.get(timeout=90)) is not None:
            output.append(text)
        assert demo.wait(timeout=30) == 0, "".join(output)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        pumping.join(timeout=10)
        assert demo.stdout is not None
        demo.stdout.close()
    shown = "".join(output)
    assert "PAY 42.00 EUR -> 200" in shown
    assert "PAY 420.00 EUR -> 403" in shown and "insufficient_authorization_details" in shown
    trace = shown.split("$ grantline audit trace", 1)[1]
    stages = re.findall(r"^\s+\d+ \S+ (\S+(?: in)?)\s+(\S+)$", trace, re.MULTILINE)
    assert [event for _, event in stages] == [
        "pushed_request.accepted",
        "interaction.started",
        "user.login_succeeded",
        "consent.shown",
        "consent.decided",
        "code.issued",
        "token.issued",
        "resource.action_allowed",
        "resource.action_refused",
    ]
    assert "!! action outside the grant, refused by the resource server" in trace
    assert "1 mismatch(es) flagged" in trace
    assert re.search(r"ok: 14 events in 16 lanes, heads root [0-9a-f]{64}", shown)

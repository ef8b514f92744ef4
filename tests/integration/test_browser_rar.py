"""Rich Authorization Requests (RFC 9396) end to end in a real browser: Debian's Chromium,
driven by Playwright, reads each requested item as a sentence, unticks some, and decides; the
test, as the client, pushes the request, redeems the code and checks what the access token
(RFC 9068) and introspection (RFC 7662) say was granted.

Without Chromium the tests are skipped, unless GRANTLINE_REQUIRE_BROWSER is set (as in CI), in
which case they fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.integration.browser_support import new_page, open_authorization, sign_in
from tests.integration.rar_support import (
    ACCESS_TOKEN_TYP,
    FILE_ITEM,
    PAYMENT_ITEM,
    introspect,
    push_dev_with_details,
    push_with_details,
    verify_access_token,
)
from tests.integration.support import (
    GrantlineServer,
    agent_client,
    exchange_code,
    query_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

DEV_CLIENT_NAME = "Example agent (development only)"

SCRIPT_PAYLOAD = "<script>window.__pwned=3</script>"
IMG_PAYLOAD = "<img src=x onerror=window.__pwned=4>"
XSS_CLIENT_NAME = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def wait_for_callback(page: Page, server: GrantlineServer) -> dict[str, str]:
    """Wait for the dev callback page; its query parameters."""
    page.wait_for_url(re.compile(re.escape(server.dev_redirect_uri) + r"\?.+"))
    expect(page.locator("h1")).to_have_text("Development callback")
    return query_of(page.url)


def test_person_grants_only_the_ticked_item(
    chromium: Browser, grantline_server: GrantlineServer, tmp_path: Path
) -> None:
    server = grantline_server
    creds = server.credentials

    with agent_client() as agent:
        pushed = push_dev_with_details(agent, server, [PAYMENT_ITEM, FILE_ITEM])

        with new_page(chromium) as page:
            open_authorization(page, server, creds.client_id, pushed.request_uri)
            sign_in(page, server)
            expect(page.locator("#client-name")).to_have_text(DEV_CLIENT_NAME)

            # One sentence per item, in plain words (not the JSON fallback).
            sentences = page.locator("li.detail span.sentence")
            expect(sentences).to_have_count(2)
            payment, files = sentences.nth(0), sentences.nth(1)
            expect(payment).to_be_visible()
            expect(files).to_be_visible()
            for fragment in ("123.50", "EUR", "Merchant A"):
                expect(payment).to_contain_text(fragment)
            expect(files).to_contain_text("/reports")
            for sentence in (payment, files):
                text = sentence.inner_text()
                assert "{" not in text and '"type"' not in text, text

            # The exact JSON is there for experts, folded away inside a closed <details>.
            payment_details = page.locator("#detail-0 details")
            files_details = page.locator("#detail-1 details")
            payment_json = payment_details.locator("pre")
            files_json = files_details.locator("pre")
            for details, raw in ((payment_details, payment_json), (files_details, files_json)):
                expect(details).to_have_js_property("open", False)
                expect(raw).to_be_hidden()
            payment_details.locator("summary").click()
            expect(payment_details).to_have_js_property("open", True)
            expect(payment_json).to_be_visible()
            assert json.loads(payment_json.inner_text()) == PAYMENT_ITEM
            expect(files_json).to_be_hidden()  # opening one item leaves the others folded

            # Every item is ticked by default; the person unticks the file access.
            payment_box = page.locator("input[type=checkbox][name=detail_0]")
            files_box = page.locator("input[type=checkbox][name=detail_1]")
            expect(payment_box).to_be_checked()
            expect(files_box).to_be_checked()
            files_box.uncheck()
            expect(files_box).not_to_be_checked()
            expect(payment_box).to_be_checked()

            page.screenshot(path=str(tmp_path / "consent-rar.png"), full_page=True)
            page.get_by_role("button", name="Approve").click()

            answer = wait_for_callback(page, server)
            assert set(answer) == {"code", "state", "iss"}, answer
            assert answer["state"] == pushed.state
            assert answer["iss"] == server.issuer
            expect(page.locator("#code")).to_have_text(answer["code"])

        response = exchange_code(
            agent,
            server,
            answer["code"],
            pushed,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["authorization_details"] == [PAYMENT_ITEM]

        # The access token is an RFC 9068 JWT carrying the same single item.
        access = verify_access_token(agent, server, tokens["access_token"])
        assert access.header["typ"] == ACCESS_TOKEN_TYP
        assert access.header["alg"] == "ES256"
        assert access.header["kid"] in access.jwks_kids
        claims = access.claims
        assert claims["authorization_details"] == [PAYMENT_ITEM]
        assert claims["iss"] == server.issuer
        assert claims["client_id"] == creds.client_id
        assert claims["exp"] > claims["iat"]

        # Introspection by the client that holds the token says the same.
        described = introspect(
            agent,
            server,
            tokens["access_token"],
            client_id=creds.client_id,
            client_secret=creds.client_secret,
        )
        assert described["active"] is True
        assert described["client_id"] == creds.client_id
        assert described["jti"] == claims["jti"]
        assert described["sub"] == claims["sub"]
        assert described["authorization_details"] == [PAYMENT_ITEM]

    # The audit trail records which item was approved and which declined.
    decided = [e for e in server.audit_events() if e["type"] == "consent.decided"][-1]
    assert decided["data"]["decision"] == "approved"
    assert decided["data"]["approved_items"] == [0]
    assert decided["data"]["declined_items"] == [1]
    assert (tmp_path / "consent-rar.png").stat().st_size > 0


def test_client_controlled_text_is_escaped_not_run(
    chromium: Browser, grantline_server: GrantlineServer
) -> None:
    server = grantline_server
    client = server.add_client(name=XSS_CLIENT_NAME, redirect_uris=[server.dev_redirect_uri])
    assert client.client_secret is not None
    both = SCRIPT_PAYLOAD + IMG_PAYLOAD
    payment: dict[str, Any] = {
        **PAYMENT_ITEM,
        "creditorName": both,
        "remittanceInformationUnstructured": IMG_PAYLOAD + SCRIPT_PAYLOAD,
    }
    files: dict[str, Any] = {
        "type": "file_access",
        "locations": [f"/reports/{SCRIPT_PAYLOAD}", IMG_PAYLOAD],
        "actions": ["read"],
    }
    state = f"s-{both}"

    with agent_client() as agent:
        pushed = push_with_details(
            agent,
            server,
            [payment, files],
            client_id=client.client_id,
            client_secret=client.client_secret,
            redirect_uri=server.dev_redirect_uri,
            state=state,
        )

    # The Content-Security-Policy would stop inline scripts and handlers anyway; bypass it so
    # that this test checks the escaping itself.
    with new_page(chromium, bypass_csp=True) as page:
        dialogs: list[str] = []

        def record(dialog: Dialog) -> None:
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", record)

        def assert_inert() -> None:
            assert page.evaluate("window.__pwned === undefined"), page.evaluate("window.__pwned")
            # Nothing a client sent became markup: these pages have no script or image.
            expect(page.locator("script")).to_have_count(0)
            expect(page.locator("img")).to_have_count(0)
            assert dialogs == []

        open_authorization(page, server, client.client_id, pushed.request_uri)
        expect(page.locator("#client-name")).to_be_visible()
        expect(page.locator("#client-name")).to_have_text(XSS_CLIENT_NAME)
        assert_inert()

        sign_in(page, server)
        expect(page.locator("#client-name")).to_have_text(XSS_CLIENT_NAME)
        sentences = page.locator("li.detail span.sentence")
        expect(sentences).to_have_count(2)
        expect(sentences.nth(0)).to_be_visible()
        expect(sentences.nth(0)).to_contain_text(f"to {both}")
        expect(sentences.nth(0)).to_contain_text(f"reference {IMG_PAYLOAD}{SCRIPT_PAYLOAD}")
        expect(sentences.nth(1)).to_be_visible()
        expect(sentences.nth(1)).to_contain_text(f"/reports/{SCRIPT_PAYLOAD}, {IMG_PAYLOAD}")
        for index, item in enumerate((payment, files)):
            details = page.locator(f"#detail-{index} details")
            details.locator("summary").click()
            raw = details.locator("pre")
            expect(raw).to_be_visible()
            assert json.loads(raw.inner_text()) == item
        assert_inert()

        # The state comes back on the dev callback page, escaped as well.
        page.get_by_role("button", name="Approve").click()
        answer = wait_for_callback(page, server)
        assert answer["state"] == state
        expect(page.locator("#state")).to_have_text(state)
        assert_inert()


#: A redirect URI whose host is markup. Registration takes it (it is the deployer's), so the
#: consent page's "you will be sent to" line must show it as text.
HOSTILE_REDIRECT = 'https://x"><img/src=x/onerror=window.__pwned=3>.example/cb'


def test_a_hostile_redirect_host_is_shown_as_text(
    chromium: Browser, grantline_server: GrantlineServer
) -> None:
    server = grantline_server
    client = server.add_client(name="Redirect Agent", redirect_uris=[HOSTILE_REDIRECT])
    assert client.client_secret is not None
    with agent_client() as agent:
        pushed = push_with_details(
            agent,
            server,
            [PAYMENT_ITEM],
            client_id=client.client_id,
            client_secret=client.client_secret,
            redirect_uri=HOSTILE_REDIRECT,
        )
    with new_page(chromium, bypass_csp=True) as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        open_authorization(page, server, client.client_id, pushed.request_uri)
        sign_in(page, server)
        # The host ends at the first "/": what is left still closes the tag and opens another.
        expect(page.locator("#redirect-host")).to_have_text('x"><img')
        assert page.evaluate("window.__pwned === undefined")
        expect(page.locator("img")).to_have_count(0)
        assert dialogs == []


def test_approving_with_nothing_ticked_is_access_denied(
    chromium: Browser, grantline_server: GrantlineServer
) -> None:
    server = grantline_server
    creds = server.credentials
    with agent_client() as agent:
        pushed = push_dev_with_details(agent, server, [PAYMENT_ITEM, FILE_ITEM])

    with new_page(chromium) as page:
        open_authorization(page, server, creds.client_id, pushed.request_uri)
        sign_in(page, server)
        boxes = page.locator("li.detail input[type=checkbox]")
        expect(boxes).to_have_count(2)
        for i in range(2):
            boxes.nth(i).uncheck()
            expect(boxes.nth(i)).not_to_be_checked()
        page.get_by_role("button", name="Approve").click()

        answer = wait_for_callback(page, server)
        assert answer["error"] == "access_denied"
        assert "code" not in answer
        assert answer["state"] == pushed.state
        assert answer["iss"] == server.issuer
        expect(page.locator("#error")).to_have_text("access_denied")
        expect(page.locator("#code")).to_have_count(0)

    decided = [e for e in server.audit_events() if e["type"] == "consent.decided"][-1]
    assert decided["data"]["decision"] == "denied"
    assert decided["data"]["approved_items"] == []

"""Security headers on every response of every route (RFC 9700 4.16 clickjacking, 4.2.4
referrer leakage), and ``Cache-Control: no-store`` on every response that may carry a secret
(RFC 6749 5.1, RFC 9126 2.2): one flow in a development instance touches every route."""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from grantline.app import create_app
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client, add_user
from tests.helpers import (
    CLIENT_SECRET,
    ISSUER,
    PASSWORD,
    USERNAME,
    Agent,
    FrozenClock,
    csrf_of,
    query_of,
)

#: Responses that carry nothing secret and may be cached by anyone.
PUBLIC = {"metadata", "jwks", "openapi", "static", "metrics"}

#: Each name is one (route, outcome); ``ROUTES`` maps every route to the names that cover it.
ROUTES = {
    ("/.well-known/oauth-authorization-server", "GET"): ["metadata"],
    ("/jwks", "GET"): ["jwks"],
    ("/openapi.json", "GET"): ["openapi"],
    ("/healthz", "GET"): ["healthz"],
    ("/readyz", "GET"): ["readyz"],
    ("/metrics", "GET"): ["metrics"],
    ("/par", "POST"): ["par", "par refused"],
    ("/authorize", "GET"): ["authorize", "authorize refused"],
    ("/interaction/{token}", "GET"): ["login page", "consent page", "interaction refused"],
    ("/interaction/{token}/login", "POST"): ["login", "login refused"],
    ("/interaction/{token}/decision", "POST"): ["decision"],
    ("/token", "POST"): ["token", "token refused"],
    ("/introspect", "POST"): ["introspect"],
    ("/revoke", "POST"): ["revoke"],
    ("/actions", "POST"): ["actions", "actions refused"],
    ("/dev/callback", "GET"): ["dev callback"],
    ("/static", "GET"): ["static"],
    ("unmatched", "GET"): ["not found", "method not allowed"],
}
NAMES = [name for names in ROUTES.values() for name in names]


@pytest.fixture
async def dev_http(
    settings: Settings, store: SQLiteStore, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(settings, dev_mode=True), store, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


async def exchanges(http: httpx.AsyncClient, store: SQLiteStore) -> dict[str, httpx.Response]:
    """One response per name: a whole authorization, every endpoint, and refusals."""
    await add_client(store)
    await add_client(store, client_id="api", name="Payments API", can_introspect=True)
    await add_user(store)
    agent = Agent(http)
    seen: dict[str, httpx.Response] = {}
    for name, path in [
        ("metadata", "/.well-known/oauth-authorization-server"),
        ("jwks", "/jwks"),
        ("openapi", "/openapi.json"),
        ("healthz", "/healthz"),
        ("readyz", "/readyz"),
        ("metrics", "/metrics"),
        ("static", "/static/grantline.css"),
        ("not found", "/nowhere"),
        ("dev callback", "/dev/callback?code=c&state=s"),
        ("interaction refused", "/interaction/unknown"),
        ("authorize refused", "/authorize?client_id=agent&request_uri=urn:x"),
    ]:
        seen[name] = await http.get(path)
    seen["method not allowed"] = await http.delete("/token")
    pushed = await agent.push()
    seen["par"] = pushed.response
    seen["par refused"] = await agent.push_raw({"response_type": "token"})
    seen["authorize"] = await agent.authorize(pushed.request_uri)
    interaction = seen["authorize"].headers["location"]
    seen["login page"] = await http.get(interaction)
    csrf = csrf_of(seen["login page"].text)
    seen["login refused"] = await http.post(
        f"{interaction}/login", data={"csrf_token": csrf, "username": USERNAME, "password": "x"}
    )
    seen["login"] = await http.post(
        f"{interaction}/login",
        data={"csrf_token": csrf, "username": USERNAME, "password": PASSWORD},
    )
    seen["consent page"] = await http.get(interaction)
    seen["decision"] = await http.post(
        f"{interaction}/decision",
        data={"csrf_token": csrf_of(seen["consent page"].text), "decision": "approve"},
    )
    code = query_of(seen["decision"].headers["location"])["code"]
    seen["token"] = await agent.exchange(code, pushed.verifier)
    seen["token refused"] = await agent.exchange(code, pushed.verifier)
    access_token = seen["token"].json()["access_token"]
    seen["introspect"] = await http.post(
        "/introspect", data={"token": access_token}, auth=("agent", CLIENT_SECRET)
    )
    seen["revoke"] = await http.post(
        "/revoke", data={"token": access_token}, auth=("agent", CLIENT_SECRET)
    )
    seen["actions refused"] = await http.post("/actions", json={})
    seen["actions"] = await http.post(
        "/actions",
        json={"report_id": secrets.token_urlsafe(16), "jti": "j", "outcome": "allowed", "at": 1},
        auth=("agent", CLIENT_SECRET),
    )
    return seen


def test_every_route_is_covered(settings: Settings, store: SQLiteStore) -> None:
    app = create_app(dataclasses.replace(settings, dev_mode=True), store)
    routes = set()
    for route in app.routes:
        if isinstance(route, Mount):
            routes.add((route.path, "GET"))
        else:
            assert isinstance(route, Route)
            routes |= {(route.path, m) for m in route.methods or () if m != "HEAD"}
    assert routes == set(ROUTES) - {("unmatched", "GET")}


def _csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    directives = (d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


@pytest.mark.parametrize("name", NAMES)
async def test_security_headers_on_every_response(
    name: str, dev_http: httpx.AsyncClient, store: SQLiteStore
) -> None:
    response = (await exchanges(dev_http, store))[name]
    assert response.status_code < 500, response.text
    csp = _csp(response)
    assert csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    # No inline or evaluated script can run: no script-src, so default-src 'none' applies.
    assert "script-src" not in csp
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "unsafe-eval" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers  # the issuer is http here
    if name not in PUBLIC:
        assert response.headers["cache-control"] == "no-store", name
    if response.headers.get("content-type", "").startswith("text/html"):
        # Nothing for the CSP to have to block: no script, no inline handlers or styles.
        assert not re.search(r"<script|\son\w+=|\sstyle=", response.text, re.IGNORECASE)


def test_templates_have_no_inline_script_or_style() -> None:
    templates = Path(__file__).parents[2] / "grantline" / "web" / "templates"
    for template in templates.glob("*.html"):
        html = template.read_text()
        assert not re.search(r"<script|<style|\son\w+=|\sstyle=", html, re.IGNORECASE), template


async def test_hsts_on_every_response_when_the_issuer_is_https(
    settings: Settings, store: SQLiteStore, clock: FrozenClock
) -> None:
    secure = dataclasses.replace(settings, issuer="https://as.example")
    transport = httpx.ASGITransport(app=create_app(secure, store, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="https://as.example") as http:
        for response in [
            await http.get("/.well-known/oauth-authorization-server"),
            await http.post("/par", data={}),
            await http.get("/authorize"),
            await http.get("/nowhere"),
            await http.get("/static/grantline.css"),
        ]:
            assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_an_http_issuer_outside_loopback_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="https outside loopback"):
        dataclasses.replace(settings, issuer="http://as.example")

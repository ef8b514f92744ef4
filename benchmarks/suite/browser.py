"""Preparing the load: signed-in browsers and tokens, obtained over HTTP like a real client.

Both servers are driven the same way: push, open the authorization URL, follow redirects,
fill in the login form when one is shown, approve the consent form, exchange the code. The
cookie jar is httpx's, so this also checks that each server's flow works end to end before
it is put under load.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from suite.jws import EcKey, pkce_pair

__all__ = ["AuthServer", "Browser", "Endpoints", "obtain_tokens"]

MAX_STEPS = 12


@dataclass(frozen=True)
class Endpoints:
    par: str
    authorize: str
    token: str
    introspect: str


@dataclass(frozen=True)
class AuthServer:
    """What a client knows about one server it pushes to."""

    base_url: str
    endpoints: Endpoints
    client_id: str
    client_secret: str
    redirect_uri: str
    username: str
    password: str

    def url(self, path: str) -> str:
        return self.base_url + path


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.fields: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag == "input" and "name" in a:
            self.fields.add(a["name"])
            if a.get("type") == "hidden":
                self.hidden[a["name"]] = a.get("value", "")


class Browser:
    """A person's browser: its own cookie jar, redirects followed one at a time."""

    def __init__(self, server: AuthServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=30.0, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def cookie_header(self) -> str:
        """The cookies a browser sends on every path: the ones wrk replays."""
        return "; ".join(
            f"{c.name}={c.value}" for c in self.http.cookies.jar if c.path in ("/", "")
        )

    def authorize(self, request_uri: str) -> str:
        """Open the authorization URL, sign in if asked, approve; the code."""
        query = urlencode({"client_id": self.server.client_id, "request_uri": request_uri})
        response = self.http.get(f"{self.server.endpoints.authorize}?{query}")
        for _ in range(MAX_STEPS):
            if response.status_code in (302, 303):
                location = response.headers["location"]
                if location.startswith(self.server.redirect_uri):
                    params = parse_qs(urlsplit(location).query)
                    if "code" not in params:
                        raise RuntimeError(f"authorization refused: {location}")
                    return params["code"][0]
                response = self.http.get(urljoin(self.server.base_url + "/", location))
            elif response.status_code == 200:
                response = self._submit(response)
            else:
                raise RuntimeError(f"unexpected {response.status_code}: {response.text[:500]}")
        raise RuntimeError("too many steps before the redirect back to the client")

    def _submit(self, page: httpx.Response) -> httpx.Response:
        forms = _Forms()
        forms.feed(page.text)
        if forms.action is None:
            raise RuntimeError(f"no form on the page: {page.text[:500]}")
        data = dict(forms.hidden)
        if "password" in forms.fields:
            data |= {"username": self.server.username, "password": self.server.password}
        else:
            data["decision"] = "approve"
        return self.http.post(urljoin(str(page.url), forms.action), data=data)


def _push(agent: httpx.Client, server: AuthServer, challenge: str, extra: dict[str, str]) -> str:
    response = agent.post(
        server.url(server.endpoints.par),
        auth=(server.client_id, server.client_secret),
        data={
            "response_type": "code",
            "client_id": server.client_id,
            "redirect_uri": server.redirect_uri,
            "scope": "inbox.read",
            "state": "bench",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        },
    )
    if response.status_code != 201:
        raise RuntimeError(f"push refused: {response.status_code} {response.text[:500]}")
    return str(response.json()["request_uri"])


def obtain_tokens(
    browser: Browser, *, dpop_key: EcKey | None = None, resource: str | None = None
) -> dict[str, Any]:
    """One whole authorization in ``browser``; the token response. With ``dpop_key`` the
    access token is DPoP-bound to it (RFC 9449 5)."""
    server = browser.server
    verifier, challenge = pkce_pair()
    extra = {"resource": resource} if resource else {}
    with httpx.Client(timeout=30.0) as agent:
        request_uri = _push(agent, server, challenge, extra)
        code = browser.authorize(request_uri)
        token_url = server.url(server.endpoints.token)
        headers = {"DPoP": dpop_key.dpop_proof("POST", token_url)} if dpop_key else {}
        response = agent.post(
            token_url,
            auth=(server.client_id, server.client_secret),
            headers=headers,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": server.redirect_uri,
                "code_verifier": verifier,
                **extra,
            },
        )
    if response.status_code != 200:
        raise RuntimeError(f"token refused: {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body

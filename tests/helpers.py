"""Test helpers: a frozen clock and an agent that drives the flow over HTTP."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from grantline.instance import detail_types_from_config, example_config
from grantline.protocol.pkce import s256_challenge
from grantline.settings import AuthorizationDetailType
from grantline.tokens.digest import Digester, new_secret
from grantline.tokens.ordered import refresh_token_id

ISSUER = "http://127.0.0.1:8000"
REDIRECT_URI = "https://agent.example/callback"
CLIENT_SECRET = "correct-horse-battery-staple-0123456789"
USERNAME = "alice"
PASSWORD = "alice-password-1"


def _example_types() -> dict[str, AuthorizationDetailType]:
    import tomllib

    return detail_types_from_config(tomllib.loads(example_config(issuer=None, dev_mode=False)))


#: The three documented example types that `grantline init` writes.
EXAMPLE_TYPES = _example_types()

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, now: int | None = None) -> None:
        self.now = now if now is not None else int(time.time())

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


@dataclass
class Pushed:
    request_uri: str
    verifier: str
    response: httpx.Response


class Agent:
    """Plays the client (back channel) and the person's browser (front channel)."""

    def __init__(
        self, http: httpx.AsyncClient, client_id: str = "agent", secret: str = CLIENT_SECRET
    ) -> None:
        self.http = http
        self.client_id = client_id
        self.secret = secret

    def params(self, verifier: str, **overrides: str | None) -> dict[str, str]:
        params: dict[str, str | None] = {
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "inbox.read",
            "state": "state-123",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    async def push_raw(self, data: Any, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", (self.client_id, self.secret))
        return await self.http.post("/par", data=data, **kwargs)

    async def push(self, **overrides: str | None) -> Pushed:
        verifier = new_verifier()
        response = await self.push_raw(self.params(verifier, **overrides))
        assert response.status_code == 201, response.text
        return Pushed(response.json()["request_uri"], verifier, response)

    async def authorize(self, request_uri: str, **extra: str) -> httpx.Response:
        params = {"client_id": self.client_id, "request_uri": request_uri, **extra}
        return await self.http.get("/authorize", params=params)

    async def open(self, request_uri: str) -> str:
        """Present the request_uri; returns the interaction path."""
        response = await self.authorize(request_uri)
        assert response.status_code == 303, response.text
        return str(response.headers["location"])

    async def login(
        self, interaction: str, username: str = USERNAME, password: str = PASSWORD
    ) -> httpx.Response:
        page = await self.http.get(interaction)
        return await self.http.post(
            f"{interaction}/login",
            data={"csrf_token": csrf_of(page.text), "username": username, "password": password},
        )

    async def decide(self, interaction: str, decision: str = "approve") -> httpx.Response:
        page = await self.http.get(interaction)
        assert page.status_code == 200, page.text
        return await self.http.post(
            f"{interaction}/decision",
            data={"csrf_token": csrf_of(page.text), "decision": decision},
        )

    async def code_for(self, **overrides: str | None) -> tuple[str, str]:
        """Run push -> authorize -> login -> approve; returns (code, verifier)."""
        pushed = await self.push(**overrides)
        interaction = await self.open(pushed.request_uri)
        await self.login(interaction)
        response = await self.decide(interaction)
        assert response.status_code == 303, response.text
        return query_of(response.headers["location"])["code"], pushed.verifier

    async def token(self, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", (self.client_id, self.secret))
        return await self.http.post("/token", data=data, **kwargs)

    async def exchange(self, code: str, verifier: str, **extra: str) -> httpx.Response:
        return await self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": REDIRECT_URI,
                **extra,
            }
        )


def database_bytes(db_path: object) -> bytes:
    """Everything SQLite has written for this database, committed or still in the WAL."""
    from pathlib import Path

    main = Path(str(db_path))
    wal = Path(f"{main}-wal")
    return main.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def as_issued_before_time_ordered_ids(
    db_path: object, digester: Digester, refresh_token: str
) -> str:
    """Rewrites a stored refresh token into one an earlier version issued (a plain keyed
    digest of 256 random bits, no time part); returns the value that now refreshes it."""
    import sqlite3

    old = new_secret()
    with sqlite3.connect(str(db_path)) as db:
        changed = db.execute(
            "UPDATE tokens SET token_digest = ? WHERE token_digest = ?",
            (digester.digest("refresh_token", old), refresh_token_id(digester, refresh_token)),
        ).rowcount
    assert changed == 1
    return old

"""Fixtures for the resource-server SDK: the real authorization server app (in process, over
httpx's ASGI transport, with every request it gets recorded), access tokens signed with its
stored keys exactly as the token endpoint signs them, and DPoP keys."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from grantline.models import User
from grantline.rs.verify import TokenVerifier
from grantline.storage.sql import SQLiteStore
from grantline.tokens.jwt import sign_access_token
from tests.conftest import SECRET_KEY, add_client
from tests.helpers import (
    CLIENT_SECRET,
    ISSUER,
    REDIRECT_URI,
    Agent,
    FrozenClock,
    csrf_of,
    query_of,
)
from tests.jose_helpers import AnyKey, b64url, dpop_proof, public_jwk, thumbprint

#: This resource server's identifier (the tokens' aud) and the URL a client calls.
RESOURCE = "https://api.example/payments"
API_URL = "https://api.example/payments/123"

PAYMENT_ITEM: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status", "cancel"],
    "locations": ["https://api.example/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
}


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the authorization server app and records them; ``down`` makes
    every request fail as an unreachable server would."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def as_transport(app: Starlette) -> RecordingTransport:
    return RecordingTransport(httpx.ASGITransport(app=app))


@pytest.fixture
async def as_http(as_transport: RecordingTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=as_transport) as http:
        yield http


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def verifier(as_http: httpx.AsyncClient, clock: FrozenClock, monotonic: Monotonic) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER, resource=RESOURCE, http=as_http, clock=clock, monotonic=monotonic
    )


def claims_for(now: int, **overrides: Any) -> dict[str, Any]:
    """Claims shaped like ``grants._tokens.mint_tokens`` makes them; None drops a claim."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": RESOURCE,
        "exp": now + 600,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": "agent",
        "scope": "invoices.pay",
        "authorization_details": [PAYMENT_ITEM],
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


async def mint(store: SQLiteStore, now: int, alg: str = "ES256", **overrides: Any) -> str:
    """An access token signed with the server's active key, as the token endpoint signs."""
    async with store.reader() as tx:
        return await sign_access_token(
            tx, alg, claims_for(now, **overrides), now, secret=SECRET_KEY
        )


async def mint_bound(store: SQLiteStore, now: int, key: AnyKey, **overrides: Any) -> str:
    return await mint(store, now, cnf={"jkt": thumbprint(public_jwk(key))}, **overrides)


def proof_for(
    key: AnyKey, now: int, token: str, *, htm: str = "GET", htu: str = API_URL, **claims: Any
) -> str:
    """A DPoP proof for a call to the resource server (RFC 9449 7), its ``ath`` computed
    here rather than with the server's code."""
    claims.setdefault("ath", b64url(hashlib.sha256(token.encode("ascii")).digest()))
    return dpop_proof(key, now, htm=htm, htu=htu, **claims)


async def verify(
    verifier: TokenVerifier,
    token: str | None,
    *,
    scheme: str = "Bearer",
    proof: str | None = None,
    method: str = "GET",
    url: str = API_URL,
) -> Any:
    return await verifier.verify(
        authorization=[] if token is None else [f"{scheme} {token}"],
        dpop=[] if proof is None else [proof],
        method=method,
        url=url,
    )


# -- real tokens from the real flow -----------------------------------------------------------

RS_CLIENT_ID = "payments-api"


@pytest.fixture
async def resource_server(store: SQLiteStore) -> tuple[str, str]:
    """This resource server's registration: `grantline clients add ... --can-introspect`."""
    await add_client(store, client_id=RS_CLIENT_ID, name="Payments API", can_introspect=True)
    return RS_CLIENT_ID, CLIENT_SECRET


@pytest.fixture
async def payer(http: httpx.AsyncClient, store: SQLiteStore, user: User) -> Agent:
    """An agent registered to ask for this resource."""
    await add_client(store, resources=(RESOURCE,))
    return Agent(http)


async def issue_token(
    agent: Agent,
    clock: FrozenClock,
    *,
    details: list[dict[str, Any]] | None = None,
    dpop_key: AnyKey | None = None,
    resource: str | None = RESOURCE,
) -> dict[str, Any]:
    """PAR, consent and the token request, over HTTP; the token response."""
    params: dict[str, str | None] = {
        "scope": None,
        "authorization_details": json.dumps(details or [PAYMENT_ITEM]),
        "resource": resource,
    }
    items = details or [PAYMENT_ITEM]
    pushed = await agent.push(**params)
    interaction = await agent.open(pushed.request_uri)
    await agent.login(interaction)
    page = await agent.http.get(interaction)
    decision = {"csrf_token": csrf_of(page.text), "decision": "approve"}
    # The consent page lists each item with a checkbox; the person ticks every one.
    decision.update({f"detail_{n}": "on" for n in range(len(items))})
    decided = await agent.http.post(f"{interaction}/decision", data=decision)
    assert decided.status_code == 303, decided.text
    code, verifier = query_of(decided.headers["location"])["code"], pushed.verifier
    headers = {}
    if dpop_key is not None:
        headers["DPoP"] = dpop_proof(dpop_key, clock.now, htm="POST", htu=f"{ISSUER}/token")
    response = await agent.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body

"""``GrantlineResource`` in a Starlette application: tokens from the real flow, refusals with
their exact status, body and challenge, and every outcome reported to the real authorization
server's ``/actions`` (read back from its audit trail)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantline.rs import GrantlineResource, VerifiedToken
from grantline.storage.sql import SQLiteStore
from tests.helpers import CLIENT_SECRET, ISSUER, Agent, FrozenClock
from tests.jose_helpers import ec_key, events
from tests.rs.conftest import (
    RESOURCE,
    RS_CLIENT_ID,
    RecordingTransport,
    issue_token,
    mint,
    proof_for,
)

PUBLIC_URL = "https://api.example"
PAYMENTS_URL = "https://api.example/payments"
ALGS = "ES256 EdDSA Ed25519 PS256 ES384 RS256"


def resource_app(auth: GrantlineResource, *, install: bool = True) -> Starlette:
    async def pay(request: Request) -> JSONResponse:
        body = await request.json()
        item = await auth.require(
            request,
            type="payment_initiation",
            action="initiate",
            amount=Decimal(body["amount"]),
            currency=body["currency"],
        )
        return JSONResponse({"status": "initiated", "granted": item["instructedAmount"]})

    async def whoami(request: Request) -> JSONResponse:
        token = await auth.token(request)
        # Asking again within the request reuses the verified token (and its spent proof).
        again = await auth(request)
        return JSONResponse({"sub": token.sub, "same": token is again})

    async def status(request: Request) -> JSONResponse:
        await auth.token(request)
        await auth.require(request, type="payment_initiation", action="status")
        return JSONResponse({"status": "pending"})

    routes = [
        Route("/payments", pay, methods=["POST"]),
        Route("/payments/me", whoami, methods=["GET"]),
        Route("/payments/status", status, methods=["GET"]),
    ]
    handlers = auth.exception_handlers if install else {}
    return Starlette(routes=routes, exception_handlers=handlers)


@pytest.fixture
async def auth(
    as_http: httpx.AsyncClient, clock: FrozenClock, resource_server: tuple[str, str]
) -> AsyncIterator[GrantlineResource]:
    auth = GrantlineResource(
        issuer=ISSUER,
        resource=RESOURCE,
        client_id=RS_CLIENT_ID,
        client_secret=CLIENT_SECRET,
        public_url=PUBLIC_URL,
        http=as_http,
        clock=clock,
    )
    async with auth.lifespan():
        yield auth


@pytest.fixture
async def api(auth: GrantlineResource) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=resource_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as api:
        yield api


async def reported(auth: GrantlineResource, store: SQLiteStore, type_: str) -> list[Any]:
    """Flush the reporter, then read the authorization server's audit trail."""
    assert auth.reporter is not None
    await auth.reporter.aclose()
    return await events(store, type_)


def assert_refusal(response: httpx.Response, status: int, error: str, challenge: str | None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert response.headers.get("www-authenticate") == challenge
    assert response.headers["cache-control"] == "no-store"
    return str(body["error_description"])


# -- allowed and refused actions, reported ----------------------------------------------------


async def test_an_action_inside_the_grant_is_allowed_and_reported(
    api: httpx.AsyncClient,
    auth: GrantlineResource,
    payer: Agent,
    store: SQLiteStore,
    clock: FrozenClock,
) -> None:
    token = (await issue_token(payer, clock))["access_token"]
    response = await api.post(
        "/payments",
        json={"amount": "42.00", "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["granted"] == {"currency": "EUR", "amount": "123.50"}
    (event,) = await reported(auth, store, "resource.action_allowed")
    assert event.client_id == "agent"
    assert event.data["resource_server"] == RS_CLIENT_ID
    assert event.data["detail_type"] == "payment_initiation"
    assert event.data["action"] == {"action": "initiate", "amount": "42.00", "currency": "EUR"}
    assert event.data["resource"] == PAYMENTS_URL
    assert "unknown_token" not in event.data


async def test_an_amount_above_the_grant_is_403_and_reported_as_refused(
    api: httpx.AsyncClient,
    auth: GrantlineResource,
    payer: Agent,
    store: SQLiteStore,
    clock: FrozenClock,
) -> None:
    token = (await issue_token(payer, clock))["access_token"]
    response = await api.post(
        "/payments",
        json={"amount": "123.51", "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}"},
    )
    description = assert_refusal(
        response,
        403,
        "insufficient_authorization_details",
        'Bearer error="insufficient_authorization_details", error_description="amount exceeds '
        f'the granted instructedAmount.amount.", DPoP algs="{ALGS}"',
    )
    assert description == "amount exceeds the granted instructedAmount.amount."
    (event,) = await reported(auth, store, "resource.action_refused")
    assert event.data["error"] == "insufficient_authorization_details"
    assert event.data["reason"] == description
    assert event.data["action"]["amount"] == "123.51"
    assert await events(store, "resource.action_allowed") == []


async def test_another_currency_is_403(
    api: httpx.AsyncClient, payer: Agent, clock: FrozenClock
) -> None:
    token = (await issue_token(payer, clock))["access_token"]
    response = await api.post(
        "/payments",
        json={"amount": "1.00", "currency": "USD"},
        headers={"Authorization": f"Bearer {token}"},
    )
    description = assert_refusal(
        response,
        403,
        "insufficient_authorization_details",
        'Bearer error="insufficient_authorization_details", error_description="currency '
        f'differs from the granted instructedAmount.currency.", DPoP algs="{ALGS}"',
    )
    assert "currency" in description


async def test_a_token_granting_another_type_is_403(
    api: httpx.AsyncClient, payer: Agent, clock: FrozenClock
) -> None:
    files = {"type": "file_access", "locations": ["/reports"], "actions": ["read"]}
    token = (await issue_token(payer, clock, details=[files]))["access_token"]
    response = await api.post(
        "/payments",
        json={"amount": "1.00", "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}"},
    )
    description = assert_refusal(
        response,
        403,
        "insufficient_authorization_details",
        'Bearer error="insufficient_authorization_details", error_description="No '
        f'payment_initiation authorization_details were granted.", DPoP algs="{ALGS}"',
    )
    assert "payment_initiation" in description


# -- DPoP through the application -------------------------------------------------------------


async def test_a_dpop_token_with_its_proof_for_the_public_url_is_allowed(
    api: httpx.AsyncClient,
    auth: GrantlineResource,
    payer: Agent,
    store: SQLiteStore,
    clock: FrozenClock,
) -> None:
    key = ec_key()
    token = (await issue_token(payer, clock, dpop_key=key))["access_token"]
    proof = proof_for(key, clock.now, token, htm="POST", htu=PAYMENTS_URL)
    response = await api.post(
        "/payments?ref=1",
        json={"amount": "100", "currency": "EUR"},
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
    )
    assert response.status_code == 200, response.text
    replayed = await api.post(
        "/payments",
        json={"amount": "100", "currency": "EUR"},
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
    )
    assert_refusal(
        replayed,
        401,
        "invalid_dpop_proof",
        'DPoP error="invalid_dpop_proof", error_description="The DPoP proof was already '
        f'used.", algs="{ALGS}", Bearer',
    )
    assert len(await reported(auth, store, "resource.action_allowed")) == 1


async def test_a_refusal_for_a_dpop_token_challenges_with_dpop(
    api: httpx.AsyncClient, payer: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    token = (await issue_token(payer, clock, dpop_key=key))["access_token"]
    proof = proof_for(key, clock.now, token, htm="POST", htu=PAYMENTS_URL)
    response = await api.post(
        "/payments",
        json={"amount": "1000", "currency": "EUR"},
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
    )
    challenge = response.headers["www-authenticate"]
    assert response.status_code == 403
    assert challenge.startswith('DPoP error="insufficient_authorization_details"')


async def test_a_token_is_verified_once_per_request(
    api: httpx.AsyncClient, payer: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    token = (await issue_token(payer, clock, dpop_key=key))["access_token"]
    me = f"{PAYMENTS_URL}/me"
    response = await api.get(
        "/payments/me",
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": proof_for(key, clock.now, token, htu=me),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["same"] is True
    status_url = f"{PAYMENTS_URL}/status"
    response = await api.get(
        "/payments/status",
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": proof_for(key, clock.now, token, htu=status_url),
        },
    )
    assert response.status_code == 200, response.text


async def test_a_proof_for_the_internal_url_is_refused_behind_a_public_url(
    api: httpx.AsyncClient, payer: Agent, clock: FrozenClock
) -> None:
    key = ec_key()
    token = (await issue_token(payer, clock, dpop_key=key))["access_token"]
    proof = proof_for(key, clock.now, token, htm="POST", htu="http://internal:8080/payments")
    response = await api.post(
        "/payments",
        json={"amount": "1", "currency": "EUR"},
        headers={"Authorization": f"DPoP {token}", "DPoP": proof},
    )
    assert_refusal(
        response,
        401,
        "invalid_dpop_proof",
        'DPoP error="invalid_dpop_proof", error_description="DPoP proof: htu does not match '
        f'the request URL.", algs="{ALGS}", Bearer',
    )


# -- refusals of the token itself (never reported) --------------------------------------------


async def test_no_token_is_401_with_a_bare_challenge(
    api: httpx.AsyncClient, auth: GrantlineResource, store: SQLiteStore
) -> None:
    response = await api.post("/payments", json={"amount": "1", "currency": "EUR"})
    assert_refusal(response, 401, "invalid_token", f'Bearer, DPoP algs="{ALGS}"')
    assert await reported(auth, store, "resource.action_refused") == []


async def test_an_expired_token_is_401_and_not_reported(
    api: httpx.AsyncClient,
    auth: GrantlineResource,
    store: SQLiteStore,
    clock: FrozenClock,
) -> None:
    token = await mint(store, clock.now - 700)
    response = await api.post(
        "/payments",
        json={"amount": "1", "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_refusal(
        response,
        401,
        "invalid_token",
        'Bearer error="invalid_token", error_description="The access token has expired.", '
        f'DPoP algs="{ALGS}"',
    )
    assert await reported(auth, store, "resource.action_refused") == []


async def test_a_malformed_authorization_header_is_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/payments/me", headers={"Authorization": "Bearer a b"})
    assert_refusal(
        response,
        400,
        "invalid_request",
        'Bearer error="invalid_request", error_description="The Authorization header is '
        f'malformed.", DPoP algs="{ALGS}"',
    )


async def test_an_unreachable_authorization_server_is_503_not_500(
    api: httpx.AsyncClient,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
) -> None:
    token = await mint(store, clock.now)
    as_transport.down = True
    response = await api.get("/payments/me", headers={"Authorization": f"Bearer {token}"})
    assert_refusal(response, 503, "temporarily_unavailable", None)
    assert response.headers["retry-after"] == "5"


# -- framework integration ------------------------------------------------------------------


async def test_without_the_handler_the_status_and_challenge_still_hold(
    auth: GrantlineResource,
) -> None:
    transport = httpx.ASGITransport(app=resource_app(auth, install=False))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as api:
        response = await api.get("/payments/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer, DPoP algs="{ALGS}"'


async def test_install_adds_the_handler(auth: GrantlineResource) -> None:
    app = resource_app(auth, install=False)
    auth.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as api:
        response = await api.get("/payments/me")
    assert response.json()["error"] == "invalid_token"


async def test_the_resource_is_a_dependency_that_asks_for_the_request(
    auth: GrantlineResource,
) -> None:
    (parameter,) = inspect.signature(auth).parameters.values()
    assert parameter.annotation is Request
    assert inspect.signature(auth).return_annotation is VerifiedToken


async def test_a_resource_without_credentials_verifies_but_does_not_report(
    as_http: httpx.AsyncClient, store: SQLiteStore, clock: FrozenClock
) -> None:
    auth = GrantlineResource(issuer=ISSUER, resource=RESOURCE, http=as_http, clock=clock)
    assert auth.reporter is None
    token = await mint(store, clock.now)
    async with auth.lifespan():
        transport = httpx.ASGITransport(app=resource_app(auth))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as api:
            response = await api.post(
                "/payments",
                json={"amount": "1", "currency": "EUR"},
                headers={"Authorization": f"Bearer {token}"},
            )
    assert response.status_code == 200, response.text

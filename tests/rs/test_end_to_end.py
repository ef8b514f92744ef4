"""End to end: a real ``grantline serve``, an agent that gets a DPoP-bound token for one
payment over HTTP (PAR, consent, token), and a real Starlette resource server under uvicorn
protected by ``grantline.rs``. One payment inside the grant is made (200), one above it is
refused (403), and the authorization server's audit trail ends with both reports."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantline.rs import GrantlineResource
from tests.integration.independent_client import ClientKey, b64url
from tests.integration.rar_support import PAYMENT_ITEM
from tests.integration.support import (
    GrantlineServer,
    ServerFactory,
    agent_client,
    browser,
    new_verifier,
    only_form,
    open_interaction,
    query_of,
    s256,
    sign_in,
)
from tests.rs.served import Served, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrantlineServer]:
    factory = ServerFactory(tmp_path_factory.mktemp("grantline-rs"))
    try:
        yield factory()
    finally:
        problems = factory.close()
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


def register(server: GrantlineServer, name: str, *options: str) -> tuple[str, str]:
    described = json.loads(server.cli("clients", "add", "--name", name, "--json", *options))
    return str(described["client_id"]), str(described["client_secret"])


def payments_api(auth: GrantlineResource) -> Starlette:
    """The resource server: one route that initiates a payment the token must allow."""

    async def pay(request: Request) -> JSONResponse:
        body = await request.json()
        await auth.require(
            request,
            type="payment_initiation",
            action="initiate",
            amount=Decimal(body["amount"]),
            currency=body["currency"],
            creditor_iban=body["iban"],
        )
        return JSONResponse({"status": "initiated", "amount": body["amount"]})

    return Starlette(
        routes=[Route("/payments", pay, methods=["POST"])],
        lifespan=auth.lifespan,
        exception_handlers=auth.exception_handlers,
    )


def proof(key: ClientKey, method: str, url: str, access_token: str | None = None) -> str:
    """An RFC 9449 proof built here, without Grantline's code."""
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
    }
    if access_token is not None:
        claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
    return key.sign(claims, {"typ": "dpop+jwt", "jwk": key.public_jwk()})


def dpop_token_for_one_payment(
    server: GrantlineServer, client: tuple[str, str], resource: str, key: ClientKey
) -> str:
    """PAR with the payment item and the resource, the person approves, the code is
    exchanged with a DPoP proof; the DPoP-bound access token."""
    verifier = new_verifier()
    with agent_client() as agent:
        pushed = agent.post(
            server.url("/par"),
            auth=client,
            headers={"DPoP": proof(key, "POST", server.url("/par"))},
            data={
                "response_type": "code",
                "redirect_uri": server.dev_redirect_uri,
                "state": "pay-1",
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
                "authorization_details": json.dumps([PAYMENT_ITEM]),
                "resource": resource,
            },
        )
        assert pushed.status_code == 201, pushed.text
        request_uri = pushed.json()["request_uri"]
        with browser(server) as person:
            interaction = open_interaction(
                person, server.url(f"/authorize?client_id={client[0]}&request_uri={request_uri}")
            )
            sign_in(person, server, only_form(person.get(interaction).text))
            consent = only_form(person.get(interaction).text)
            # Every item stays ticked, as the consent page shows them.
            decided = person.post(consent.action, data={**consent.inputs, "decision": "approve"})
            assert decided.status_code == 303, decided.text
        code = query_of(str(decided.headers["location"]))["code"]
        response = agent.post(
            server.url("/token"),
            auth=client,
            headers={"DPoP": proof(key, "POST", server.url("/token"))},
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": server.dev_redirect_uri,
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    return str(response.json()["access_token"])


def pay(api: httpx.Client, url: str, token: str, key: ClientKey, amount: str) -> httpx.Response:
    body = {"amount": amount, "currency": "EUR", "iban": "DE02100100109307118603"}
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof(key, "POST", url, token)}
    return api.post(url, json=body, headers=headers)


def test_an_agent_pays_within_its_grant_and_both_actions_reach_the_audit_trail(
    server: GrantlineServer,
) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/payments"
    agent = register(
        server, "Paying agent", "--redirect-uri", server.dev_redirect_uri, "--resource", resource
    )
    api_client = register(
        server, "Payments API", "--redirect-uri", "https://api.example/unused", "--can-introspect"
    )
    auth = GrantlineResource(
        issuer=server.issuer,
        resource=resource,
        client_id=api_client[0],
        client_secret=api_client[1],
        public_url=f"http://127.0.0.1:{port}",
    )
    key = ClientKey.es256()
    token = dpop_token_for_one_payment(server, agent, resource, key)

    served = Served(payments_api(auth), port)
    served.start()
    try:
        with httpx.Client(timeout=10) as api:
            allowed = pay(api, resource, token, key, "42.00")
            refused = pay(api, resource, token, key, "500.00")
    finally:
        served.stop()  # its shutdown flushes the reports

    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 403, refused.text
    assert refused.json() == {
        "error": "insufficient_authorization_details",
        "error_description": "amount exceeds the granted instructedAmount.amount.",
    }
    assert refused.headers["www-authenticate"].startswith(
        'DPoP error="insufficient_authorization_details"'
    )

    events = server.audit_events()
    issued = next(e for e in events if e["type"] == "token.issued")
    jti = issued["data"]["access_token_jti"]
    reports = [e for e in events if e["type"].startswith("resource.action_")]
    assert [e["type"] for e in reports] == [
        "resource.action_allowed",
        "resource.action_refused",
    ]
    for report in reports:
        assert report["client_id"] == agent[0]
        assert report["grant_id"] == issued["grant_id"]
        assert report["data"]["jti"] == jti
        assert report["data"]["resource_server"] == api_client[0]
        assert report["data"]["resource"] == resource
    assert reports[0]["data"]["action"]["amount"] == "42.00"
    assert reports[1]["data"]["action"]["amount"] == "500.00"
    assert reports[1]["data"]["error"] == "insufficient_authorization_details"
    assert "amount exceeds" in reports[1]["data"]["reason"]
    assert reports == events[-2:]
    # What an operator reads with `grantline audit tail`.
    tail = server.cli("audit", "tail", "--lines", "2")
    assert "resource.action_allowed" in tail
    assert "resource.action_refused" in tail

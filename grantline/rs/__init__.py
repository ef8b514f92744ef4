"""Grantline for resource servers: verify access tokens, check the exact action against the
person's approval, and report what was done.

A Starlette application protecting a payments API::

    from decimal import Decimal

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from grantline.rs import GrantlineResource

    auth = GrantlineResource(
        issuer="https://as.example",            # the Grantline issuer
        resource="https://api.example/payments",  # this API's identifier: the token's aud
        client_id="payments-api",              # `grantline clients add ... --can-introspect`
        client_secret="...",
    )

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
        return JSONResponse({"status": "initiated"})

    app = Starlette(
        routes=[Route("/payments", pay, methods=["POST"])],
        lifespan=auth.lifespan,
        exception_handlers=auth.exception_handlers,
    )

``require`` verifies the token (``Bearer`` or ``DPoP`` with its proof), checks that one granted
``payment_initiation`` item allows this action, reports the outcome to the authorization
server in the background, and returns the item; otherwise the client gets 401 (bad token) or
403 ``insufficient_authorization_details``, with a ``WWW-Authenticate`` challenge.

With FastAPI, ``auth.install(app)`` and ``token: VerifiedToken = Depends(auth)``. Without a web
framework: ``TokenVerifier.verify(...)``, ``VerifiedToken.grant().require(...)`` and
``ActionReporter.report(...)`` are the pieces.
"""

from __future__ import annotations

from grantline.rs.authorization import BUILTIN_RULES, Decision, Fact, Grant, Rule, TypeRules
from grantline.rs.claims import VerifiedToken
from grantline.rs.errors import (
    InsufficientAuthorizationDetails,
    InvalidDpopProof,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    ResourceError,
    TemporarilyUnavailable,
)
from grantline.rs.report import ActionReport, ActionReporter
from grantline.rs.starlette import GrantlineHTTPError, GrantlineResource
from grantline.rs.verify import TokenVerifier

__all__ = [
    "BUILTIN_RULES",
    "ActionReport",
    "ActionReporter",
    "Decision",
    "Fact",
    "Grant",
    "GrantlineHTTPError",
    "GrantlineResource",
    "InsufficientAuthorizationDetails",
    "InvalidDpopProof",
    "InvalidRequest",
    "InvalidToken",
    "MissingToken",
    "ResourceError",
    "Rule",
    "TemporarilyUnavailable",
    "TokenVerifier",
    "TypeRules",
    "VerifiedToken",
]

"""An example payments API protected by Grantline, built with ``grantline.rs``.

It accepts ``POST /payments`` with ``{"amount": "42.00", "currency": "EUR", "iban": "..."}`` and
pays only what the person approved: the DPoP-bound access token must carry a
``payment_initiation`` item whose amount is at least this one, in this currency, to this IBAN.
Every decision, allowed or refused, is reported to Grantline and ends the audit line.

Run: ``python examples/payment_demo/payments_api.py`` with GRANTLINE_ISSUER, PAYMENTS_API_URL,
PAYMENTS_API_CLIENT_ID and PAYMENTS_API_CLIENT_SECRET in the environment (``demo.py`` sets them).
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantline.rs import GrantlineResource

PUBLIC_URL = os.environ.get("PAYMENTS_API_URL", "http://127.0.0.1:8401")

auth = GrantlineResource(
    issuer=os.environ.get("GRANTLINE_ISSUER", "http://127.0.0.1:8400"),
    resource=f"{PUBLIC_URL}/payments",
    client_id=os.environ.get("PAYMENTS_API_CLIENT_ID"),
    client_secret=os.environ.get("PAYMENTS_API_CLIENT_SECRET"),
    public_url=PUBLIC_URL,
    require_dpop=True,
)


async def pay(request: Request) -> JSONResponse:
    try:
        body = await request.json()
        amount = Decimal(str(body["amount"]))
        currency, iban = str(body["currency"]), str(body["iban"])
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return JSONResponse(
            {"error": "invalid_request", "error_description": "amount, currency, iban"}, 400
        )
    await auth.require(
        request,
        type="payment_initiation",
        action="initiate",
        amount=amount,
        currency=currency,
        creditor_iban=iban,
    )
    return JSONResponse({"status": "initiated", "amount": str(amount), "currency": currency})


app = Starlette(
    routes=[Route("/payments", pay, methods=["POST"])],
    lifespan=auth.lifespan,
    exception_handlers=auth.exception_handlers,
)

if __name__ == "__main__":
    where = urlsplit(PUBLIC_URL)
    uvicorn.run(
        app, host=where.hostname or "127.0.0.1", port=where.port or 8401, log_level="warning"
    )

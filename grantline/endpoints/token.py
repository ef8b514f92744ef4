"""The token endpoint (RFC 6749 section 3.2): authenticate, dispatch on grant_type."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from grantline.endpoints._common import authenticate, context_of
from grantline.endpoints._proofs import check_dpop_nonce_first, dpop_nonce_header, dpop_proof
from grantline.errors import InvalidDpopProof, InvalidRequest, UnsupportedGrantType
from grantline.grants import GrantHandler, TokenRequest
from grantline.ratelimit.guard import limit_caller, limit_client
from grantline.web.forms import read_form
from grantline.web.responses import json_response

__all__ = ["token"]


async def token(request: Request) -> Response:
    """POST /token."""
    ctx = context_of(request)
    params = await read_form(request, ctx.settings.max_body_bytes)
    await limit_caller(ctx, request, "token", params)
    check_dpop_nonce_first(ctx, request)
    client = await authenticate(ctx, request, params)
    await limit_client(ctx, "token", client.client_id)
    handler = _grant_handler(request.app.state.grants, params)
    proof = await dpop_proof(ctx, request, "/token")
    if proof is None and (client.dpop_bound_access_tokens or ctx.settings.fapi2):
        # RFC 9449 5.2 dpop_bound_access_tokens; FAPI 2.0 5.3.2.1: sender-constrained only.
        raise InvalidDpopProof(
            "This client must prove possession of a key with DPoP.",
            headers=dpop_nonce_header(ctx),
        )
    body = await handler(ctx, TokenRequest(client, params, proof.jkt if proof else None))
    return json_response(body, headers=dpop_nonce_header(ctx))


def _grant_handler(grants: Mapping[str, GrantHandler], params: Mapping[str, str]) -> GrantHandler:
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required.")
    handler = grants.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported.")
    return handler

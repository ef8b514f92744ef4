"""The pushed authorization request endpoint (RFC 9126 section 2)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from grantline.audit import event
from grantline.client_auth import AUTH_PARAMS
from grantline.context import Context
from grantline.endpoints._common import authenticate, context_of, validate_request
from grantline.endpoints._proofs import (
    check_dpop_nonce_first,
    dpop_proof,
    unpack_request_object,
)
from grantline.errors import InvalidDpopProof, InvalidRequest, OAuthError
from grantline.models import AuthorizationRequest, Client, StoredRequest
from grantline.protocol.par import (
    REQUEST_URI_PREFIX,
    new_reference,
    pushed_request_lifetime,
    reference_id,
)
from grantline.ratelimit.guard import limit_caller, limit_client
from grantline.web.forms import read_form
from grantline.web.responses import json_response

__all__ = ["pushed_authorization_request"]


async def pushed_authorization_request(request: Request) -> Response:
    """POST /par: authenticate, validate like /authorize, store, answer 201 (RFC 9126 2.2)."""
    ctx = context_of(request)
    params = await read_form(request, ctx.settings.max_body_bytes)
    await limit_caller(ctx, request, "par", params)
    check_dpop_nonce_first(ctx, request)
    client = await authenticate(ctx, request, params)
    await limit_client(ctx, "par", client.client_id)
    pushed, auth_request = await _prepare(ctx, request, client, params)
    request_uri, stored = _new_pushed_request(ctx, client, auth_request, pushed)
    await _store(ctx, stored)
    return json_response(
        {"request_uri": request_uri, "expires_in": stored.expires_at - stored.created_at}, 201
    )


def _without_credentials(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in AUTH_PARAMS}


async def _prepare(
    ctx: Context, request: Request, client: Client, params: Mapping[str, str]
) -> tuple[dict[str, str], AuthorizationRequest]:
    """The pushed parameters (unpacked from a request object, bound to a DPoP key) and the
    validated request; any refusal is audited."""
    try:
        pushed = _without_credentials(params)
        if "request" in pushed:
            pushed = await unpack_request_object(ctx, client, pushed)
        elif client.require_signed_request_object:
            raise InvalidRequest("This client must push a signed request object (RFC 9101).")
        proof = await dpop_proof(ctx, request, "/par")
        if proof is not None:
            # RFC 9449 10.1: a DPoP header at PAR binds the code like dpop_jkt does.
            if pushed.get("dpop_jkt", proof.jkt) != proof.jkt:
                raise InvalidDpopProof("dpop_jkt does not match the DPoP proof's key.")
            pushed["dpop_jkt"] = proof.jkt
        return pushed, validate_request(ctx, pushed, client, pushed=True)
    except OAuthError as exc:
        async with ctx.store.transaction() as tx:
            await tx.append(
                event(
                    "pushed_request.refused",
                    ctx.clock(),
                    client_id=client.client_id,
                    error=exc.error,
                    reason=exc.detail,
                )
            )
        # RFC 9126 2.3 reports a bad redirect_uri as invalid_request, which ours already is;
        # the JSON body never redirects, so "page only" does not apply here.
        raise


def _new_pushed_request(
    ctx: Context, client: Client, auth_request: AuthorizationRequest, params: Mapping[str, str]
) -> tuple[str, StoredRequest]:
    reference = new_reference()
    now = ctx.clock()
    lifetime = pushed_request_lifetime(ctx.settings.par_lifetime, client, fapi2=ctx.settings.fapi2)
    stored = StoredRequest(
        request_id=reference_id(ctx.digester, reference),
        client_id=client.client_id,
        request=auth_request,
        raw_params=dict(params),
        pushed=True,
        created_at=now,
        expires_at=now + lifetime,
    )
    return REQUEST_URI_PREFIX + reference, stored


async def _store(ctx: Context, stored: StoredRequest) -> None:
    req = stored.request
    async with ctx.store.transaction() as tx:
        await tx.add_request(stored)
        await tx.append(
            event(
                "pushed_request.accepted",
                stored.created_at,
                client_id=stored.client_id,
                request_id=stored.request_id,
                scopes=list(req.scopes),
                resources=list(req.resources),
                authorization_details=ctx.redactor.details(req.authorization_details),
                redirect_uri=req.redirect_uri,
                dpop_jkt=req.dpop_jkt,
                expires_at=stored.expires_at,
                lifetime=stored.expires_at - stored.created_at,
            )
        )

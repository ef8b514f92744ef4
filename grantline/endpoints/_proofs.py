"""Proofs a request may carry: a DPoP proof (RFC 9449) and a signed request object (RFC 9101).

Both are single use across every process: their ``jti`` goes into the database replay cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from starlette.requests import Request

from grantline.context import Context
from grantline.errors import InvalidDpopProof, InvalidRequestObject, UseDpopNonce
from grantline.models import Client
from grantline.protocol.dpop import Proof, check_proof, nonce_for, nonce_valid
from grantline.protocol.jose import (
    CLIENT_SIGNING_ALGS,
    JoseFailure,
    read_header,
    unverified_payload,
    verify_compact,
)
from grantline.protocol.request_object import request_object_params

__all__ = ["check_dpop_nonce_first", "dpop_nonce_header", "dpop_proof", "unpack_request_object"]


def dpop_nonce_header(ctx: Context) -> dict[str, str]:
    """The ``DPoP-Nonce`` header to send, when nonces are on (RFC 9449 section 8)."""
    if not ctx.settings.dpop_nonce_required:
        return {}
    return {"DPoP-Nonce": nonce_for(ctx.settings.secret_key, ctx.clock())}


def check_dpop_nonce_first(ctx: Context, request: Request) -> None:
    """Ask for a fresh nonce before anything single use is spent.

    RFC 9449 8: a client retries with the nonce it is given. If its client assertion or
    request object were already recorded as used, that retry would fail, so a proof without a
    current nonce is turned away first, on its unverified ``nonce`` claim alone; the full check
    of the proof follows in ``dpop_proof``.
    """
    if not ctx.settings.dpop_nonce_required:
        return
    values = request.headers.getlist("dpop")
    if len(values) != 1:
        return
    try:
        claims = unverified_payload(values[0])
    except JoseFailure:
        return  # malformed: dpop_proof refuses it with the precise reason
    nonce = claims.get("nonce") if isinstance(claims, dict) else None
    if not nonce_valid(
        ctx.settings.secret_key, nonce if isinstance(nonce, str) else None, ctx.clock()
    ):
        raise UseDpopNonce(headers=dpop_nonce_header(ctx))


async def dpop_proof(ctx: Context, request: Request, path: str) -> Proof | None:
    """The request's DPoP proof for ``path``, fully checked, or None when it carries none."""
    values = request.headers.getlist("dpop")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidDpopProof("Send exactly one DPoP header.")
    now = ctx.clock()
    window = ctx.settings.dpop_proof_window
    proof = check_proof(
        values[0], method=request.method, url=ctx.settings.endpoint(path), now=now, window=window
    )
    secret = ctx.settings.secret_key
    if ctx.settings.dpop_nonce_required and not nonce_valid(secret, proof.nonce, now):
        raise UseDpopNonce(headers=dpop_nonce_header(ctx))
    async with ctx.store.transaction() as tx:
        # The proof is acceptable while now <= iat + window; remembering it one second past
        # that covers every moment it could be replayed.
        expires_at = proof.iat + window + 1
        if not await tx.remember_once(f"dpop:{proof.jkt}:{proof.jti}", expires_at, now):
            raise InvalidDpopProof("The DPoP proof was already used.")
    return proof


async def unpack_request_object(
    ctx: Context, client: Client, params: Mapping[str, str]
) -> dict[str, str]:
    """Verify the ``request`` parameter and return the parameters it carries.

    RFC 9101 6.3 / RFC 9126 3: parameters outside the object are ignored, except that a
    ``client_id`` beside it must name the same client.
    """
    token = params["request"]
    if params.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestObject("client_id does not match the authenticated client.")
    now = ctx.clock()
    try:
        kid = read_header(token).get("kid")
        keys = await ctx.client_keys.keys_for(client, kid if isinstance(kid, str) else None)
        header, claims = verify_compact(token, keys, CLIENT_SIGNING_ALGS)
    except JoseFailure as exc:
        raise InvalidRequestObject(f"Request object: {exc}.") from None
    unpacked, jti, exp = request_object_params(
        header,
        claims,
        client_id=client.client_id,
        issuer=ctx.settings.issuer,
        now=now,
        max_lifetime=ctx.settings.max_jwt_lifetime,
    )
    replay_id = jti or hashlib.sha256(token.encode("ascii")).hexdigest()
    async with ctx.store.transaction() as tx:
        if not await tx.remember_once(f"request_object:{client.client_id}:{replay_id}", exp, now):
            raise InvalidRequestObject("The request object was already used.")
    return unpacked

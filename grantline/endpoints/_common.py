"""Steps shared by the back-channel endpoints."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from grantline.audit import event
from grantline.client_auth import authenticate_client
from grantline.context import Context
from grantline.errors import InvalidClient
from grantline.models import Client

__all__ = ["authenticate", "context_of"]


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


async def authenticate(ctx: Context, request: Request, params: Mapping[str, str]) -> Client:
    """Authenticate the calling client; a failure against a registered client is audited."""
    authorization = request.headers.get("authorization")
    try:
        async with ctx.store.reader() as tx:
            return await authenticate_client(tx, ctx.digester, authorization, params)
    except InvalidClient as exc:
        if exc.detail != "unknown client_id" and (claimed := params.get("client_id")):
            async with ctx.store.transaction() as tx:
                if await tx.get_client(claimed) is not None:
                    await tx.append(
                        event(
                            "client.authentication_failed",
                            ctx.clock(),
                            client_id=claimed,
                            endpoint=request.url.path,
                            reason=exc.detail,
                        )
                    )
        raise

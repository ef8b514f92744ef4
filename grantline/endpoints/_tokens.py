"""Finding a presented token by its digest (RFC 7009 / RFC 7662 ``token_type_hint``)."""

from __future__ import annotations

from typing import Literal

from grantline.context import Context
from grantline.models import Token
from grantline.storage import TokenStore
from grantline.tokens.ordered import access_token_id, refresh_token_id

__all__ = ["find_token"]

_KINDS: tuple[Literal["access_token", "refresh_token"], ...] = ("access_token", "refresh_token")


async def find_token(
    ctx: Context, tokens: TokenStore, value: str, hint: str | None
) -> Token | None:
    """The stored token with this value. The hint only orders the search: RFC 7009 2.1 has the
    server "extend its search across all of its supported token types" when it misses."""
    order = sorted(_KINDS, key=lambda kind: kind != hint)
    for kind in order:
        if kind == "refresh_token":
            digest = refresh_token_id(ctx.digester, value)
        else:
            digest = access_token_id(ctx.digester, value)
        token = await tokens.get_token(digest)
        if token is not None and token.kind == kind:
            return token
    return None

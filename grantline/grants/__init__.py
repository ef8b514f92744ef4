"""Token endpoint grants, registered by ``grant_type`` in ``create_app``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from grantline.context import Context
from grantline.models import Client

__all__ = ["GrantHandler"]

#: (context, authenticated client, form parameters) -> token response body.
GrantHandler = Callable[[Context, Client, Mapping[str, str]], Awaitable[dict[str, Any]]]

"""Whether a client must use pushed authorization requests (RFC 9126 sections 5 and 6)."""

from __future__ import annotations

from grantline.models import Client
from grantline.settings import Settings

__all__ = ["par_required"]


def par_required(settings: Settings, client: Client) -> bool:
    """The server-wide switch wins; otherwise the client's own
    ``require_pushed_authorization_requests`` metadata decides."""
    return settings.require_pushed_authorization_requests or client.require_par is True

"""The consent document: what the person is shown, as plain text, and its SHA-256.

The audit trail stores this exact text with its digest, so that an auditor can later read what
the person saw rather than reconstruct it from templates that may have changed since.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from grantline.models import AuthorizationRequest, Client

__all__ = ["ConsentDocument", "build_consent"]


@dataclass(frozen=True, slots=True)
class ScopeLine:
    scope: str
    description: str


@dataclass(frozen=True, slots=True)
class ConsentDocument:
    client_name: str
    client_id: str
    redirect_host: str
    scopes: tuple[ScopeLine, ...]
    text: str
    sha256: str


def build_consent(
    client: Client, request: AuthorizationRequest, scope_descriptions: dict[str, str]
) -> ConsentDocument:
    redirect_host = urlsplit(request.redirect_uri).netloc or request.redirect_uri
    lines = tuple(
        ScopeLine(scope, scope_descriptions.get(scope, scope)) for scope in request.scopes
    )
    text_lines = [
        f"Application: {client.name} (client_id {client.client_id})",
        f"Returns you to: {redirect_host}",
        "Requested access:",
    ]
    text_lines += [f"- {line.description} [{line.scope}]" for line in lines] or [
        "- No specific access (identification only)"
    ]
    text = "\n".join(text_lines) + "\n"
    return ConsentDocument(
        client_name=client.name,
        client_id=client.client_id,
        redirect_host=redirect_host,
        scopes=lines,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )

"""The consent document: what the person is shown, as plain text, and its SHA-256.

The audit trail stores this exact text with its digest, so that an auditor can later read what
the person saw rather than reconstruct it from templates that may have changed since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from grantline.models import AuthorizationRequest, Client
from grantline.policy.authorization_details import Segment

__all__ = ["ConsentDocument", "DetailLine", "ScopeLine", "approved_items", "build_consent"]


@dataclass(frozen=True, slots=True)
class ScopeLine:
    scope: str
    description: str


@dataclass(frozen=True, slots=True)
class DetailLine:
    """One RFC 9396 item: the sentence a person reads and the JSON an expert can check.

    ``segments`` keep the client's values apart from the template's words; ``sentence`` is the
    plain-text form, values in quotes, as the audit trail records it.
    """

    index: int
    type: str
    segments: tuple[Segment, ...]
    json: str

    @property
    def sentence(self) -> str:
        return "".join(f"\u201c{s.text}\u201d" if s.is_value else s.text for s in self.segments)


@dataclass(frozen=True, slots=True)
class ConsentDocument:
    client_name: str
    client_id: str
    redirect_host: str
    scopes: tuple[ScopeLine, ...]
    details: tuple[DetailLine, ...]
    resources: tuple[str, ...]
    text: str
    sha256: str


def build_consent(
    client: Client,
    request: AuthorizationRequest,
    scope_descriptions: Mapping[str, str],
    sentence: Callable[[Mapping[str, Any]], tuple[Segment, ...]],
) -> ConsentDocument:
    redirect_host = urlsplit(request.redirect_uri).netloc or request.redirect_uri
    scopes = tuple(
        ScopeLine(scope, scope_descriptions.get(scope, scope)) for scope in request.scopes
    )
    details = tuple(
        DetailLine(
            index=i,
            type=str(item["type"]),
            segments=sentence(item),
            json=json.dumps(item, indent=2, sort_keys=True, ensure_ascii=False),
        )
        for i, item in enumerate(request.authorization_details)
    )
    lines = [
        f"Application: {client.name} (client_id {client.client_id})",
        f"Returns you to: {redirect_host}",
        "Requested access:",
    ]
    lines += [f"- {line.description} [{line.scope}]" for line in scopes]
    lines += [f"- Item {d.index + 1}: {d.sentence} [{d.type}]" for d in details]
    if not scopes and not details:
        lines.append("- No specific access (identification only)")
    if request.resources:
        lines.append("Usable at: " + ", ".join(request.resources))
    text = "\n".join(lines) + "\n"
    return ConsentDocument(
        client_name=client.name,
        client_id=client.client_id,
        redirect_host=redirect_host,
        scopes=scopes,
        details=details,
        resources=request.resources,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def approved_items(form: Mapping[str, str], count: int) -> tuple[int, ...]:
    """Indices of the items whose checkbox (``detail_<index>``) came back checked."""
    return tuple(i for i in range(count) if form.get(f"detail_{i}") == "on")

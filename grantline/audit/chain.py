"""The audit log's hash chain: every event commits to the one before it.

One chain over the whole log, in ``seq`` order, rather than per-grant chains tied together by
periodic Merkle roots. A single chain makes the order of events itself tamper-evident and lets
``grantline audit verify`` name the first bad event with one pass; its price is that appends
serialize on the chain head. Appends are buffered to the end of their transaction, so the head
is held only for the last statements before COMMIT (see ``grantline.storage.sql``);
``benchmarks/README.md`` has the measured cost on SQLite and PostgreSQL.

An entry's link covers its header (seq, type, time, ids) and the SHA-256 of its JSON body, not
the body itself, so retention can drop old bodies and the chain still verifies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

__all__ = ["FORMAT", "GENESIS", "ChainEntry", "body_digest", "link"]

#: Names the encoding below; a new encoding gets a new name, so old links stay checkable.
FORMAT = "grantline-audit-v1"

#: The ``prev`` of the first event.
GENESIS = "0" * 64


def body_digest(data_text: str) -> str:
    """SHA-256 of an event body exactly as stored (canonical JSON text)."""
    return hashlib.sha256(data_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """What an event's link commits to."""

    seq: int
    type: str
    at: int
    client_id: str | None
    user_id: str | None
    request_id: str | None
    grant_id: str | None
    body_sha256: str


def link(prev: str, entry: ChainEntry) -> str:
    """The chain hash of ``entry`` after ``prev``: SHA-256 over the format name, the previous
    hash and a JSON array of the header, so no two different headers encode alike."""
    header = json.dumps(
        [
            FORMAT,
            prev,
            entry.seq,
            entry.type,
            entry.at,
            entry.client_id,
            entry.user_id,
            entry.request_id,
            entry.grant_id,
            entry.body_sha256,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(header.encode("ascii")).hexdigest()

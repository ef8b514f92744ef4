"""The audit log's hash chains: every event commits to the one before it in its lane.

The log is split into ``LANES`` chains. An event's lane follows from the authorization it
belongs to (its pushed request, else its grant, else its client or user), so one
authorization's whole line (pushed, shown, decided, code, tokens, actions) is one unbroken,
ordered stretch of one chain. Signed checkpoints commit to every lane's head at once (their
SHA-256 root), which ties the lanes together.

Why lanes rather than one chain: appends serialize on their chain's head until COMMIT. With a
single head, PostgreSQL serializes every audited transaction including its commit flush, and
two processes on PostgreSQL pushed fewer than half as many requests as without the chain. With
16 heads, transactions of different authorizations rarely meet (``benchmarks/README.md``).
Why not one chain per grant: events without a grant (pushed requests, refusals, client and
user changes) need a chain too, and per-grant heads would grow without bound.

An entry's link covers its header (lane, position, type, time, ids) and the SHA-256 of its
JSON body, not the body itself, so retention can drop old bodies and the chain still verifies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

__all__ = [
    "FORMAT",
    "GENESIS",
    "LANES",
    "ChainEntry",
    "body_digest",
    "encode_header",
    "heads_root",
    "lane_of",
    "link",
]

#: Names the encoding below; a new encoding gets a new name, so old links stay checkable.
FORMAT = "grantline-audit-v1"

#: The ``prev`` of the first event of every lane.
GENESIS = "0" * 64

#: How many chains the log is split into; fixed by the schema (one head row each).
LANES = 16


def lane_of(
    request_id: str | None, grant_id: str | None, client_id: str | None, user_id: str | None
) -> int:
    """The lane of an event: by its authorization when it has one, so that line stays whole."""
    key = request_id or grant_id or client_id or user_id or ""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") % LANES


def heads_root(heads: Sequence[tuple[int, int, str]]) -> str:
    """SHA-256 over every lane's (lane, position, hash): what a checkpoint signs."""
    encoded = json.dumps([FORMAT, [list(h) for h in sorted(heads)]], separators=(",", ":"))
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def body_digest(data_text: str) -> str:
    """SHA-256 of an event body exactly as stored (canonical JSON text)."""
    return hashlib.sha256(data_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """What an event's link commits to."""

    lane: int
    position: int
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
    return hashlib.sha256(encode_header(prev, entry)).hexdigest()


def encode_header(prev: str, entry: ChainEntry) -> bytes:
    """The header as ``json.dumps(..., separators=(",", ":"), ensure_ascii=True)`` writes it,
    the encoding every stored link was made with. orjson writes the same bytes for ASCII text
    in a fifth of the time (a link per event, on every audited request); anything else
    (non-ASCII text, DEL) goes through the standard library, which escapes it."""
    header = [
        FORMAT,
        prev,
        entry.lane,
        entry.position,
        entry.type,
        entry.at,
        entry.client_id,
        entry.user_id,
        entry.request_id,
        entry.grant_id,
        entry.body_sha256,
    ]
    try:
        fast = orjson.dumps(header)
    except orjson.JSONEncodeError:
        fast = None  # integers past 64 bits, lone surrogates
    # ensure_ascii escapes DEL too, which orjson leaves as it is.
    if fast is not None and fast.isascii() and b"\x7f" not in fast:
        return fast
    return json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")

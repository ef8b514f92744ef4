"""Signed checkpoints of the audit chain: "at seq N the chain hash was H", signed by the server.

A checkpoint kept outside the database (``grantline audit checkpoint --output FILE``, shipped to
a SIEM or a ticket) makes deleting the newest events detectable: ``verify --checkpoint FILE``
finds the event it names and compares its link. It is a compact JWS signed with the newest
active access-token signing key, whose public half stays in the database after retirement.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.jwk import KeySet

from grantline.audit.chain import FORMAT, LANES, heads_root
from grantline.protocol.jose import JoseFailure, verify_compact
from grantline.settings import SIGNING_ALGS
from grantline.storage import SigningKeyStore, StorageUnavailable, Store
from grantline.storage.audit import AuditCheckpointRow
from grantline.tokens.keys import parsed_key

__all__ = [
    "CHECKPOINT_TYP",
    "Checkpoint",
    "checkpoint_now",
    "checkpoint_periodically",
    "read_checkpoint",
    "sign_checkpoint",
]

_log = logging.getLogger("grantline.audit")

CHECKPOINT_TYP = "grantline-audit-checkpoint+jws"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    issuer: str
    at: int
    kid: str
    #: lane -> (position, link) of every lane's head when it was signed.
    heads: dict[int, tuple[int, str]]
    root: str


async def sign_checkpoint(
    keys: SigningKeyStore,
    issuer: str,
    heads: dict[int, tuple[int, str]],
    now: int,
    *,
    secret: bytes,
) -> AuditCheckpointRow:
    """A checkpoint of every lane's head, signed with the newest active signing key."""
    listed = [(lane, position, link) for lane, (position, link) in sorted(heads.items())]
    root = heads_root(listed)
    for key in await keys.list_signing_keys(now):
        if key.active:
            header = {"alg": key.alg, "kid": key.kid, "typ": CHECKPOINT_TYP}
            payload = {
                "iss": issuer,
                "format": FORMAT,
                "at": now,
                "root": root,
                "heads": [list(h) for h in listed],
            }
            body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
            token = jws.serialize_compact(
                header, body, parsed_key(key, secret), algorithms=[key.alg]
            )
            return AuditCheckpointRow(root=root, at=now, jws=token)
    raise LookupError("no active signing key: run `grantline keys rotate`")


async def checkpoint_now(
    store: Store, issuer: str, now: int, *, secret: bytes
) -> AuditCheckpointRow:
    """Sign the current lane heads and keep the checkpoint (once per set of heads)."""
    async with store.transaction() as tx:
        row = await sign_checkpoint(tx, issuer, await tx.audit_heads(), now, secret=secret)
        await tx.add_checkpoint(row)
        return row


async def checkpoint_periodically(
    store: Store, issuer: str, interval: float, clock: Callable[[], int], *, secret: bytes
) -> None:
    """``grantline serve``'s background task: a checkpoint every ``interval`` seconds when the
    log has grown. Every worker runs it; the first to sign a set of heads keeps its checkpoint."""
    last: dict[int, tuple[int, str]] | None = None
    while True:
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 - spreads workers
        try:
            async with store.reader() as tx:
                heads = await tx.audit_heads()
            if heads != last:
                await checkpoint_now(store, issuer, clock(), secret=secret)
                last = heads
        except (StorageUnavailable, LookupError) as exc:
            _log.warning("audit checkpoint skipped: %s", exc)


async def read_checkpoint(token: str, keys: SigningKeyStore, *, secret: bytes) -> Checkpoint:
    """The checkpoint in ``token`` once its signature verifies with one of this server's keys
    (retired ones included); ``JoseFailure`` otherwise."""
    public = [
        {**parsed_key(k, secret).as_dict(private=False), "alg": k.alg, "kid": k.kid}
        for k in await keys.list_signing_keys(None)
    ]
    header, claims = verify_compact(
        token.strip(), KeySet.import_key_set({"keys": public}), SIGNING_ALGS
    )
    if header.get("typ") != CHECKPOINT_TYP or claims.get("format") != FORMAT:
        raise JoseFailure("not an audit checkpoint")
    heads = _heads(claims.get("heads"))
    root = _field(claims, "root", str)
    if heads_root([(lane, p, h) for lane, (p, h) in heads.items()]) != root:
        raise JoseFailure("the checkpoint's heads do not match its root")
    return Checkpoint(
        issuer=_field(claims, "iss", str),
        at=_field(claims, "at", int),
        kid=str(header.get("kid")),
        heads=heads,
        root=root,
    )


def _heads(value: Any) -> dict[int, tuple[int, str]]:
    heads: dict[int, tuple[int, str]] = {}
    if not isinstance(value, list):
        raise JoseFailure("the checkpoint's heads are missing or malformed")
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in item[:2])
            or not isinstance(item[2], str)
            or not 0 <= item[0] < LANES
            or item[0] in heads
        ):
            raise JoseFailure("the checkpoint's heads are missing or malformed")
        heads[item[0]] = (item[1], item[2])
    return heads


def _field(claims: dict[str, Any], name: str, kind: type) -> Any:
    value = claims.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise JoseFailure(f"the checkpoint's {name} is missing or malformed")
    return value

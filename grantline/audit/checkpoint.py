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

from grantline.audit.chain import FORMAT
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
    seq: int
    hash: str
    at: int
    kid: str


async def sign_checkpoint(
    keys: SigningKeyStore,
    issuer: str,
    head: tuple[int, str],
    now: int,
    *,
    secret: bytes,
) -> AuditCheckpointRow:
    """A checkpoint of ``head`` signed with the newest active signing key."""
    for key in await keys.list_signing_keys(now):
        if key.active:
            seq, chain_hash = head
            header = {"alg": key.alg, "kid": key.kid, "typ": CHECKPOINT_TYP}
            payload = {"iss": issuer, "format": FORMAT, "seq": seq, "hash": chain_hash, "at": now}
            body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
            token = jws.serialize_compact(
                header, body, parsed_key(key, secret), algorithms=[key.alg]
            )
            return AuditCheckpointRow(seq=seq, hash=chain_hash, at=now, jws=token)
    raise LookupError("no active signing key: run `grantline keys rotate`")


async def checkpoint_now(
    store: Store, issuer: str, now: int, *, secret: bytes
) -> AuditCheckpointRow:
    """Sign the current chain head and keep the checkpoint (once per head ``seq``)."""
    async with store.transaction() as tx:
        row = await sign_checkpoint(tx, issuer, await tx.audit_head(), now, secret=secret)
        await tx.add_checkpoint(row)
        return row


async def checkpoint_periodically(
    store: Store, issuer: str, interval: int, clock: Callable[[], int], *, secret: bytes
) -> None:
    """``grantline serve``'s background task: a checkpoint every ``interval`` seconds when the
    chain has grown. Every worker runs it; the first to sign a head keeps its checkpoint."""
    last_seq = -1
    while True:
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 - spreads workers
        try:
            async with store.reader() as tx:
                seq, _ = await tx.audit_head()
            if seq != last_seq:
                last_seq = (await checkpoint_now(store, issuer, clock(), secret=secret)).seq
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
    return Checkpoint(
        issuer=_field(claims, "iss", str),
        seq=_field(claims, "seq", int),
        hash=_field(claims, "hash", str),
        at=_field(claims, "at", int),
        kid=str(header.get("kid")),
    )


def _field(claims: dict[str, Any], name: str, kind: type) -> Any:
    value = claims.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise JoseFailure(f"the checkpoint's {name} is missing or malformed")
    return value

"""The audit log in SQL: appends buffered to the end of their transaction and chained there.

``append`` only remembers the event. ``seal_audit``, which the store calls right before COMMIT,
takes the chain head's row lock (one UPDATE), links the buffered events after it, inserts them
and moves the head. Holding the head for those last statements only, rather than from the first
append, keeps PostgreSQL transactions that write events from queueing behind each other's
whole unit of work; on SQLite the write lock is already held from BEGIN IMMEDIATE.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grantline.audit.chain import ChainEntry, body_digest, link
from grantline.models import AuditEvent

__all__ = ["AuditCheckpointRow", "ChainedEvent", "SqlAuditLog", "canonical_json"]


def canonical_json(value: Any) -> str:
    """The one JSON text an event body is stored (and digested) as."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """An event as stored, with what ``grantline audit verify`` recomputes."""

    event: AuditEvent
    #: The body exactly as stored; None once retention pruned it.
    data_text: str | None
    body_sha256: str
    chain_hash: str

    def entry(self) -> ChainEntry:
        e = self.event
        assert e.seq is not None
        return ChainEntry(
            e.seq, e.type, e.at, e.client_id, e.user_id, e.request_id, e.grant_id, self.body_sha256
        )


@dataclass(frozen=True, slots=True)
class AuditCheckpointRow:
    seq: int
    hash: str
    at: int
    jws: str


class SqlAuditLog:
    """``storage.AuditLog`` in portable SQL; ``SqlTransaction`` supplies the primitives."""

    __slots__ = ("_pending",)

    _pending: list[AuditEvent]

    async def _one(self, sql: str, args: Sequence[Any]) -> Any:
        raise NotImplementedError

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def _run(self, sql: str, args: Sequence[Any]) -> int:
        raise NotImplementedError

    _COLS = "seq, type, at, client_id, user_id, request_id, grant_id, data, body_sha256, chain_hash"

    async def append(self, event: AuditEvent) -> None:
        self._pending.append(event)

    async def seal_audit(self) -> None:
        """Chain and insert the buffered events; the last statements before COMMIT."""
        if not self._pending:
            return
        events, self._pending = self._pending, []
        head = await self._one(
            "UPDATE audit_head SET seq = seq + ? WHERE id = 1 RETURNING seq, hash", (len(events),)
        )
        seq, prev = head[0] - len(events), head[1]
        for event in events:
            seq += 1
            data = canonical_json(event.data)
            entry = ChainEntry(
                seq,
                event.type,
                event.at,
                event.client_id,
                event.user_id,
                event.request_id,
                event.grant_id,
                body_digest(data),
            )
            prev = link(prev, entry)
            await self._run(
                f"INSERT INTO audit_events ({self._COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    entry.type,
                    entry.at,
                    entry.client_id,
                    entry.user_id,
                    entry.request_id,
                    entry.grant_id,
                    data,
                    entry.body_sha256,
                    prev,
                ),
            )
        await self._run("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))

    @staticmethod
    def _chained(row: Any) -> ChainedEvent:
        event = AuditEvent(
            seq=row[0],
            type=row[1],
            at=row[2],
            client_id=row[3],
            user_id=row[4],
            request_id=row[5],
            grant_id=row[6],
            data={} if row[7] is None else json.loads(row[7]),
        )
        return ChainedEvent(event, row[7], row[8], row[9])

    async def tail(self, limit: int) -> list[AuditEvent]:
        rows = await self._all(
            f"SELECT {self._COLS} FROM audit_events ORDER BY seq DESC LIMIT ?", (limit,)
        )
        return [self._chained(r).event for r in reversed(rows)]

    async def events_for(
        self,
        *,
        request_id: str | None = None,
        grant_id: str | None = None,
        user_id: str | None = None,
    ) -> list[AuditEvent]:
        pairs = [
            (column, value)
            for column, value in (
                ("request_id", request_id),
                ("grant_id", grant_id),
                ("user_id", user_id),
            )
            if value is not None
        ]
        if not pairs:
            return []
        # The column names come from the fixed tuple above, never from input.
        where = " OR ".join(f"{column} = ?" for column, _ in pairs)
        rows = await self._all(
            f"SELECT {self._COLS} FROM audit_events WHERE {where} ORDER BY seq",
            [value for _, value in pairs],
        )
        return [self._chained(r).event for r in rows]

    async def chained_events(self, after_seq: int, limit: int) -> list[ChainedEvent]:
        """Stored events after ``after_seq`` in chain order, as stored, for verify/export."""
        rows = await self._all(
            f"SELECT {self._COLS} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [self._chained(r) for r in rows]

    async def audit_head(self) -> tuple[int, str]:
        row = await self._one("SELECT seq, hash FROM audit_head WHERE id = 1", ())
        return int(row[0]), str(row[1])

    async def add_checkpoint(self, checkpoint: AuditCheckpointRow) -> bool:
        """Keeps a signed checkpoint; False when one for that ``seq`` exists already."""
        added = await self._run(
            "INSERT INTO audit_checkpoints (seq, hash, at, jws) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.jws),
        )
        return added == 1

    async def list_checkpoints(self) -> list[AuditCheckpointRow]:
        rows = await self._all("SELECT seq, hash, at, jws FROM audit_checkpoints ORDER BY seq")
        return [AuditCheckpointRow(*r) for r in rows]

    async def prune_event_bodies(self, before: int) -> int:
        """Drops the bodies of events older than ``before``; their digests keep the chain
        verifiable. The number of bodies dropped."""
        return await self._run(
            "UPDATE audit_events SET data = NULL WHERE at < ? AND data IS NOT NULL", (before,)
        )

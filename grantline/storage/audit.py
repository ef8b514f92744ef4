"""The audit log in SQL: appends buffered to the end of their transaction and chained there.

``append`` only remembers the event. ``seal_audit``, which the store calls right before COMMIT,
takes the head row of each lane it writes to (one UPDATE each, in lane order so that two
transactions never wait on each other crosswise), links the buffered events after it, inserts
them and moves the head. Holding heads for those last statements only, rather than from the
first append, keeps PostgreSQL transactions that write events from queueing behind each
other's whole unit of work; on SQLite the write lock is already held from BEGIN IMMEDIATE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from grantline.audit.chain import ChainEntry, body_digest, lane_of, link
from grantline.models import AuditEvent
from grantline.storage.statements import SqlStatements

__all__ = ["AuditCheckpointRow", "ChainedEvent", "SqlAuditLog", "canonical_json"]


def canonical_json(value: Any) -> str:
    """The one JSON text an event body (or any stored JSON) is kept as: keys sorted, no spaces,
    UTF-8 unescaped. Digests are taken over the text as stored, so the encoder may change
    without touching old rows.

    orjson writes it: a push stores three such texts, and the standard library's encoder was a
    tenth of the push (benchmarks/README.md, "Where the time goes").
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except orjson.JSONEncodeError:
        # What orjson declines: integers beyond 64 bits, which a client may put inside
        # authorization_details, and lone surrogates.
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """An event as stored, with what ``grantline audit verify`` recomputes."""

    event: AuditEvent
    lane: int
    position: int
    #: The body exactly as stored; None once retention pruned it.
    data_text: str | None
    body_sha256: str
    chain_hash: str

    def entry(self) -> ChainEntry:
        e = self.event
        return ChainEntry(
            self.lane,
            self.position,
            e.type,
            e.at,
            e.client_id,
            e.user_id,
            e.request_id,
            e.grant_id,
            self.body_sha256,
        )


@dataclass(frozen=True, slots=True)
class AuditCheckpointRow:
    #: ``heads_root`` of the lane heads the checkpoint signs.
    root: str
    at: int
    jws: str


class SqlAuditLog(SqlStatements):
    """``storage.AuditLog`` in portable SQL; ``SqlTransaction`` supplies the primitives."""

    __slots__ = ("_pending",)

    _pending: list[AuditEvent]

    _COLS = (
        "seq, type, at, client_id, user_id, request_id, grant_id, data, body_sha256, "
        "chain_hash, lane, position"
    )
    _INSERT = (
        "INSERT INTO audit_events (type, at, client_id, user_id, request_id, grant_id, data, "
        "body_sha256, chain_hash, lane, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    async def append(self, event: AuditEvent) -> None:
        self._pending.append(event)

    async def seal_audit(self) -> None:
        """Chain and insert the buffered events; the last statements before COMMIT."""
        if not self._pending:
            return
        events, self._pending = self._pending, []
        lanes = [lane_of(e.request_id, e.grant_id, e.client_id, e.user_id) for e in events]
        heads = await self._take_lanes(sorted(set(lanes)))
        rows = []
        # Inserted in the order they were appended, so ``seq`` keeps the order of events.
        for event, lane in zip(events, lanes, strict=True):
            position, prev = heads[lane]
            data = canonical_json(event.data)
            entry = ChainEntry(
                lane,
                position + 1,
                event.type,
                event.at,
                event.client_id,
                event.user_id,
                event.request_id,
                event.grant_id,
                body_digest(data),
            )
            chain_hash = link(prev, entry)
            heads[lane] = (entry.position, chain_hash)
            rows.append(
                (
                    entry.type,
                    entry.at,
                    entry.client_id,
                    entry.user_id,
                    entry.request_id,
                    entry.grant_id,
                    data,
                    entry.body_sha256,
                    chain_hash,
                    lane,
                    entry.position,
                )
            )
        await self._run_many(self._INSERT, rows)
        await self._run_many(
            "UPDATE audit_head SET position = ?, hash = ? WHERE lane = ?",
            [(position, link_, lane) for lane, (position, link_) in sorted(heads.items())],
        )

    async def _take_lanes(self, lanes: list[int]) -> dict[int, tuple[int, str]]:
        """Each lane's head (position, link) before this transaction's events, held until
        COMMIT. Here by one read, since SQLite's writer holds the database's write lock from
        BEGIN IMMEDIATE; a database with row locks takes the heads in lane order, so two
        transactions never wait on each other crosswise."""
        rows = await self._lane_rows(lanes)
        heads = {int(r[0]): (int(r[1]), str(r[2])) for r in rows}
        missing = set(lanes) - set(heads)
        if missing:
            raise LookupError(f"audit lanes {sorted(missing)} have no head row")
        return heads

    async def _lane_rows(self, lanes: list[int]) -> list[Any]:
        """The head rows of ``lanes`` (in order), taken for this transaction."""
        return await self._all(
            "SELECT lane, position, hash FROM audit_head "
            f"WHERE lane IN ({', '.join('?' * len(lanes))})",
            lanes,
        )

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
        return ChainedEvent(event, row[10], row[11], row[7], row[8], row[9])

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

    async def chained_events(self, lane: int, after: int, limit: int) -> list[ChainedEvent]:
        """Stored events of ``lane`` after position ``after``, in chain order, as stored."""
        rows = await self._all(
            f"SELECT {self._COLS} FROM audit_events WHERE lane = ? AND position > ? "
            "ORDER BY position LIMIT ?",
            (lane, after, limit),
        )
        return [self._chained(r) for r in rows]

    async def chained_since(self, after_seq: int, limit: int) -> list[ChainedEvent]:
        """Stored events after ``after_seq`` in ``seq`` order (every lane), as stored."""
        rows = await self._all(
            f"SELECT {self._COLS} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [self._chained(r) for r in rows]

    async def audit_heads(self) -> dict[int, tuple[int, str]]:
        """Every lane's newest position and link (0 and the genesis hash when empty)."""
        rows = await self._all("SELECT lane, position, hash FROM audit_head ORDER BY lane")
        return {int(r[0]): (int(r[1]), str(r[2])) for r in rows}

    async def add_checkpoint(self, checkpoint: AuditCheckpointRow) -> bool:
        """Keeps a signed checkpoint; False when one of the same heads exists already."""
        added = await self._run(
            "INSERT INTO audit_checkpoints (root, at, jws) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (checkpoint.root, checkpoint.at, checkpoint.jws),
        )
        return added == 1

    async def list_checkpoints(self) -> list[AuditCheckpointRow]:
        rows = await self._all("SELECT root, at, jws FROM audit_checkpoints ORDER BY at, root")
        return [AuditCheckpointRow(*r) for r in rows]

    async def prune_event_bodies(self, before: int) -> int:
        """Drops the bodies of events older than ``before``; their digests keep the chain
        verifiable. The number of bodies dropped."""
        return await self._run(
            "UPDATE audit_events SET data = NULL WHERE at < ? AND data IS NOT NULL", (before,)
        )

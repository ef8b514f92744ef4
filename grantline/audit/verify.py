"""Recomputing the audit chains: the first event that does not match, named.

In every lane, each stored event must have the body digest of its stored body (unless
retention dropped the body), the next position, the link that follows from its
predecessor's and a higher ``seq``; the lane's head must point at its last event; every
checkpoint must name, for each lane, an event whose link it signed. The first failure is
reported with what was found there, because a reviewer needs the spot, not a count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from grantline.audit.chain import GENESIS, LANES, body_digest, heads_root, link
from grantline.audit.checkpoint import Checkpoint
from grantline.storage import AuditLog
from grantline.storage.audit import ChainedEvent

__all__ = ["Problem", "VerifyReport", "verify_chain"]

_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Problem:
    #: The stored event where a lane first fails; None when the failure is a missing event.
    seq: int | None
    lane: int
    #: The position in the lane where the failure shows.
    position: int
    reason: str

    @property
    def where(self) -> str:
        spot = f"lane {self.lane} position {self.position}"
        return f"event {self.seq} ({spot})" if self.seq is not None else spot


@dataclass
class VerifyReport:
    events: int = 0
    pruned_bodies: int = 0
    #: lane -> (position, link) as recomputed.
    heads: dict[int, tuple[int, str]] = field(default_factory=dict)
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def root(self) -> str:
        return heads_root([(lane, p, h) for lane, (p, h) in self.heads.items()])


async def verify_chain(log: AuditLog, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
    report = VerifyReport(checkpoints=len(checkpoints))
    for lane in range(LANES):
        problem = await _verify_lane(log, lane, checkpoints, report)
        if problem is not None:
            report.problems.append(problem)
            break
    return report


async def _verify_lane(
    log: AuditLog, lane: int, checkpoints: Sequence[Checkpoint], report: VerifyReport
) -> Problem | None:
    # Every checkpoint's head of this lane: two that disagree must both be checked.
    signed: dict[int, list[str]] = {}
    for c in checkpoints:
        position, link_hash = c.heads.get(lane, (0, GENESIS))
        signed.setdefault(position, []).append(link_hash)
    prev_pos, prev, prev_seq = 0, GENESIS, 0
    head_pos, head_hash = prev_pos, prev
    while True:
        batch = await log.chained_events(lane, prev_pos, _BATCH)
        if not batch:
            head_pos, head_hash = (await log.audit_heads()).get(lane, (0, GENESIS))
            # On a live server an append may commit between the last batch and the head:
            # read on rather than take the newer head for a truncation.
            if head_pos > prev_pos and await log.chained_events(lane, prev_pos, 1):
                continue
            break
        for stored in batch:
            problem = _check(stored, prev_pos, prev, prev_seq, signed)
            if problem is not None:
                return problem
            report.events += 1
            report.pruned_bodies += stored.data_text is None
            prev_pos, prev, prev_seq = stored.position, stored.chain_hash, stored.event.seq or 0
    report.heads[lane] = (prev_pos, prev)
    return _check_end(lane, prev_pos, prev, head_pos, head_hash, max(signed, default=0))


def _check(
    stored: ChainedEvent, prev_pos: int, prev: str, prev_seq: int, signed: dict[int, list[str]]
) -> Problem | None:
    seq, lane, position = stored.event.seq, stored.lane, stored.position
    if stored.data_text is not None and body_digest(stored.data_text) != stored.body_sha256:
        reason = f"the body of event {seq} ({stored.event.type}) was changed"
        return Problem(seq, lane, position, reason)
    if link(prev, stored.entry()) != stored.chain_hash:
        if position != prev_pos + 1:
            reason = (
                f"event {seq} does not follow lane {lane} position {prev_pos}: events between "
                "them were deleted, or rows were reordered"
            )
        else:
            reason = (
                f"event {seq} does not link to its predecessor in lane {lane}: its header, "
                "order or link was edited"
            )
        return Problem(seq, lane, position, reason)
    # ``seq`` is not linked, but readers (tail, trace, export) order by it, and within a lane
    # it rises with the position: appends to a lane wait for the lane head until COMMIT.
    if (seq or 0) <= prev_seq:
        reason = (
            f"event {seq} follows event {prev_seq} in lane {lane} but not in seq order: "
            "rows were reordered"
        )
        return Problem(seq, lane, position, reason)
    if any(h != stored.chain_hash for h in signed.get(position, ())):
        reason = (
            f"event {seq} differs from the one a checkpoint signed at lane {lane} "
            f"position {position}"
        )
        return Problem(seq, lane, position, reason)
    return None


def _check_end(
    lane: int, last: int, last_hash: str, head: int, head_hash: str, checkpointed: int
) -> Problem | None:
    if head > last:
        reason = (
            f"lane {lane} ends at position {last} but its head names position {head}: "
            "the newest events were deleted"
        )
        return Problem(None, lane, last + 1, reason)
    if head < last:
        reason = (
            f"lane {lane} position {head + 1} is past the lane head (position {head}): "
            "events were inserted without moving the head"
        )
        return Problem(None, lane, head + 1, reason)
    if head_hash != last_hash:
        reason = (
            f"lane {lane} position {last} does not match the lane head: the newest event or "
            "the head was rewritten"
        )
        return Problem(None, lane, last, reason)
    if checkpointed > last:
        reason = (
            f"lane {lane} ends at position {last} but a checkpoint signed position "
            f"{checkpointed}: events were deleted from the end"
        )
        return Problem(None, lane, last + 1, reason)
    return None

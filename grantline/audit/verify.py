"""Recomputing the audit chain: the first event that does not match, named.

Each stored event must have the body digest of its stored body (unless retention dropped the
body) and the link that follows from its predecessor's; the chain head must point at the last
event; every checkpoint must name an event whose link it signed. The first failure is reported
with what was found there, because a reviewer needs the spot, not a count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from grantline.audit.chain import GENESIS, body_digest, link
from grantline.audit.checkpoint import Checkpoint
from grantline.storage import AuditLog

__all__ = ["Problem", "VerifyReport", "verify_chain"]

_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Problem:
    #: The stored seq where the chain first fails (the checkpoint's seq for a truncation).
    seq: int
    reason: str


@dataclass
class VerifyReport:
    events: int = 0
    pruned_bodies: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_chain(log: AuditLog, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
    report = VerifyReport()
    # A list per seq: two checkpoints of one seq that disagree must both be checked.
    wanted: dict[int, list[Checkpoint]] = {}
    for c in checkpoints:
        wanted.setdefault(c.seq, []).append(c)
    prev_seq, prev = 0, GENESIS
    head_seq, head_hash = prev_seq, prev
    while not report.problems:
        batch = await log.chained_events(prev_seq, _BATCH)
        if not batch:
            head_seq, head_hash = await log.audit_head()
            # On a live server an append may commit between the last batch and the head:
            # read on rather than take the newer head for a truncation.
            if head_seq > prev_seq and await log.chained_events(prev_seq, 1):
                continue
            break
        for stored in batch:
            seq = stored.event.seq
            assert seq is not None
            report.events += 1
            if stored.data_text is None:
                report.pruned_bodies += 1
            elif body_digest(stored.data_text) != stored.body_sha256:
                report.problems.append(
                    Problem(seq, f"the body of event {seq} ({stored.event.type}) was changed")
                )
                break
            if link(prev, stored.entry()) != stored.chain_hash:
                report.problems.append(Problem(seq, _link_failure(seq, prev_seq)))
                break
            if any(c.hash != stored.chain_hash for c in wanted.get(seq, ())):
                report.problems.append(
                    Problem(seq, f"event {seq} differs from the checkpoint signed at {seq}")
                )
                break
            prev_seq, prev = seq, stored.chain_hash
    report.last_seq, report.last_hash = prev_seq, prev
    report.checkpoints = len(checkpoints)
    if report.problems:
        return report
    if head_seq > prev_seq:
        report.problems.append(
            Problem(
                prev_seq + 1,
                f"the log ends at event {prev_seq} but its head names event {head_seq}: "
                "the newest events were deleted",
            )
        )
    elif head_seq < prev_seq:
        report.problems.append(
            Problem(
                head_seq + 1,
                f"event {head_seq + 1} is past the chain head (event {head_seq}): "
                "events were inserted without moving the head",
            )
        )
    elif head_hash != prev:
        report.problems.append(
            Problem(
                prev_seq,
                f"event {prev_seq} does not match the chain head: "
                "the newest event or the head was rewritten",
            )
        )
    beyond = [c for c in checkpoints if c.seq > prev_seq]
    if beyond:
        first = min(beyond, key=lambda c: c.seq)
        report.problems.append(
            Problem(
                prev_seq + 1,
                f"the log ends at event {prev_seq} but a checkpoint signed at {first.seq} "
                "covers more: events were deleted from the end",
            )
        )
    return report


def _link_failure(seq: int, prev_seq: int) -> str:
    if seq != prev_seq + 1:
        return (
            f"event {seq} does not follow event {prev_seq}: events between them were deleted, "
            "or rows were reordered"
        )
    return f"event {seq} does not link to event {prev_seq}: its header, order or link was edited"

"""The audit hash chains on SQLite and PostgreSQL: how appends chain in their lanes, and how
``verify_chain`` names the first event an attacker with write access to the database changed.

Every tampering test edits rows directly with SQL, on a connection of its own, the way someone
holding the database file or credentials would; the store is only used to read the result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest
from joserfc import jws

import grantline.audit.verify as verify_module
from grantline.audit import event
from grantline.audit.chain import FORMAT, GENESIS, LANES, ChainEntry, body_digest, heads_root, link
from grantline.audit.checkpoint import (
    CHECKPOINT_TYP,
    Checkpoint,
    checkpoint_now,
    read_checkpoint,
)
from grantline.audit.verify import Problem, VerifyReport, verify_chain
from grantline.models import AuditEvent
from grantline.protocol.jose import JoseFailure
from grantline.storage import AuditLog, Store
from grantline.storage.audit import AuditCheckpointRow, ChainedEvent, canonical_json
from grantline.storage.schema import open_store
from grantline.tokens.keys import parsed_key
from tests.audit.lanes import id_in_lane
from tests.conftest import SECRET_KEY
from tests.helpers import ISSUER
from tests.storage.conftest import Tamper

NOW = 1_700_000_000

#: The lane of the authorization whose line the tampering tests edit, and two lanes beside
#: it: one that verify walks before it, one after.
LINE, BEFORE, AFTER = 7, 2, 12
REQUEST = id_in_lane(LINE, "req")
BEFORE_CLIENT = id_in_lane(BEFORE, "client")
AFTER_USER = id_in_lane(AFTER, "user")


class Boom(Exception):
    """Raised inside a transaction to force a rollback."""


def numbered(n: int, *, at: int | None = None, **data: object) -> AuditEvent:
    """The n-th event of the line: every header field set, so each can be tampered with."""
    return event(
        "token.issued",
        NOW + n if at is None else at,
        client_id="agent",
        user_id="user-1",
        request_id=REQUEST,
        grant_id="grant-1",
        scope="inbox.read",
        n=n,
        **data,
    )


def beside(n: int) -> AuditEvent:
    """An event committed with the line's n-th: in lane BEFORE when n is odd, else AFTER."""
    if n % 2:
        return event("client.secret_rotated", NOW + n, client_id=BEFORE_CLIENT, n=n)
    return event("user.login_failed", NOW + n, user_id=AFTER_USER, n=n)


def in_lane(lane: int, **data: Any) -> AuditEvent:
    """An event of an authorization of ``lane``."""
    return event("token.issued", NOW, request_id=id_in_lane(lane, "req"), **data)


async def append(store: Store, *events: AuditEvent) -> None:
    async with store.transaction() as tx:
        for ev in events:
            await tx.append(ev)


async def lane_events(store: Store, lane: int = LINE) -> list[ChainedEvent]:
    async with store.reader() as tx:
        return await tx.chained_events(lane, 0, 10_000)


async def every_event(store: Store) -> list[ChainedEvent]:
    async with store.reader() as tx:
        return await tx.chained_since(0, 10_000)


async def heads(store: Store) -> dict[int, tuple[int, str]]:
    async with store.reader() as tx:
        return await tx.audit_heads()


async def verify(store: Store, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
    async with store.reader() as tx:
        return await verify_chain(tx, checkpoints)


def named(report: VerifyReport) -> list[tuple[str, str]]:
    """Where and why verify failed, as ``grantline audit verify`` prints it."""
    return [(p.where, p.reason) for p in report.problems]


async def take_checkpoint(store: Store) -> Checkpoint:
    """Sign the current heads, as ``grantline audit checkpoint`` does, and read it back."""
    row = await checkpoint_now(store, ISSUER, NOW, secret=SECRET_KEY)
    async with store.reader() as tx:
        return await read_checkpoint(row.jws, tx, secret=SECRET_KEY)


def recomputed(events: Sequence[ChainedEvent]) -> list[str]:
    """The links the events of one lane should carry, recomputed from headers and bodies."""
    prev, links = GENESIS, []
    for ev in events:
        prev = link(prev, ev.entry())
        links.append(prev)
    return links


def empty_heads() -> dict[int, tuple[int, str]]:
    return {lane: (0, GENESIS) for lane in range(LANES)}


def root_of(current: dict[int, tuple[int, str]]) -> str:
    return heads_root([(lane, p, h) for lane, (p, h) in current.items()])


def assert_lanes_whole(events: Sequence[ChainedEvent]) -> dict[int, list[ChainedEvent]]:
    """Each lane's events have positions 1..n, rising seqs and links that recompute."""
    by_lane: dict[int, list[ChainedEvent]] = {}
    for ev in sorted(events, key=lambda e: (e.lane, e.position)):
        by_lane.setdefault(ev.lane, []).append(ev)
    for lane, chained in by_lane.items():
        assert [e.position for e in chained] == list(range(1, len(chained) + 1)), lane
        seqs = [e.event.seq or 0 for e in chained]
        assert seqs == sorted(seqs), lane
        assert [e.chain_hash for e in chained] == recomputed(chained), lane
    return by_lane


@pytest.fixture
async def line(store: Store) -> list[ChainedEvent]:
    """Ten commits, each of the line's n-th event (lane LINE, position n, seq 2n - 1) and an
    event beside it (seq 2n; lane BEFORE for odd n, AFTER for even n). The line as stored."""
    for n in range(1, 11):
        await append(store, numbered(n), beside(n))
    events = await lane_events(store)
    report = await verify(store)
    assert report.ok, report.problems
    assert report.events == 20
    return events


# -- appending ---------------------------------------------------------------------------


async def test_an_empty_log_verifies_with_every_lane_at_genesis(store: Store) -> None:
    assert await heads(store) == empty_heads()
    report = await verify(store)
    assert report.ok, report.problems
    assert (report.events, report.heads) == (0, empty_heads())
    assert report.root == heads_root([(lane, 0, GENESIS) for lane in range(LANES)])


async def test_an_authorization_s_events_fill_its_lane_in_order(
    store: Store, line: list[ChainedEvent]
) -> None:
    assert [e.lane for e in line] == [LINE] * 10
    assert [e.position for e in line] == list(range(1, 11))
    assert [e.event.seq for e in line] == list(range(1, 20, 2))
    assert [e.event.data["n"] for e in line] == list(range(1, 11))
    assert [e.chain_hash for e in line] == recomputed(line)
    # The events beside it fill their own lanes, and seq still follows the order of appends.
    before, after = await lane_events(store, BEFORE), await lane_events(store, AFTER)
    assert [(e.position, e.event.seq) for e in before] == [
        (1, 2),
        (2, 6),
        (3, 10),
        (4, 14),
        (5, 18),
    ]
    assert [(e.position, e.event.seq) for e in after] == [(1, 4), (2, 8), (3, 12), (4, 16), (5, 20)]
    assert [e.chain_hash for e in before] == recomputed(before)
    assert [e.chain_hash for e in after] == recomputed(after)
    assert [e.event.seq for e in await every_event(store)] == list(range(1, 21))
    for lane in set(range(LANES)) - {LINE, BEFORE, AFTER}:
        assert await lane_events(store, lane) == []


async def test_one_authorization_s_whole_line_is_one_stretch_of_its_lane(store: Store) -> None:
    """Pushed, shown, decided, code, token, action, refresh: every event names the pushed
    request, so the line stays contiguous in its lane while another authorization, in its
    own transactions in between, fills another lane."""
    request, other = id_in_lane(5, "req"), id_in_lane(11, "req")
    ids = {"client_id": "agent", "request_id": request}
    granted = {**ids, "user_id": "user-1", "grant_id": "grant-1"}
    steps = [
        [event("pushed_request.accepted", NOW, **ids)],
        [event("interaction.started", NOW + 1, **ids)],
        [
            event("user.login_succeeded", NOW + 2, **ids, user_id="user-1"),
            event("consent.shown", NOW + 2, **ids, user_id="user-1", sha256="d" * 64),
        ],
        [
            event("consent.decided", NOW + 3, **ids, user_id="user-1", decision="approve"),
            event("code.issued", NOW + 3, **granted),
        ],
        [event("token.issued", NOW + 4, **granted, access_token_jti="j1")],
        [event("resource.action_allowed", NOW + 5, **granted, action="pay")],
        [event("token.refreshed", NOW + 6, **granted, access_token_jti="j2")],
    ]
    for k, step in enumerate(steps):
        await append(store, *step)
        await append(store, event("pushed_request.accepted", NOW + k, request_id=other, k=k))

    mine = await lane_events(store, 5)
    assert [e.event.type for e in mine] == [ev.type for step in steps for ev in step]
    assert [e.position for e in mine] == list(range(1, 10))
    assert [e.chain_hash for e in mine] == recomputed(mine)
    assert all(e.event.request_id == request for e in mine)
    theirs = await lane_events(store, 11)
    assert [(e.position, e.event.data["k"]) for e in theirs] == [(k + 1, k) for k in range(7)]
    # Seq interleaves the two; each lane's positions do not.
    assert [e.event.seq for e in mine] == [1, 3, 5, 6, 8, 9, 11, 13, 15]
    assert (await verify(store)).ok


async def test_a_stored_event_is_its_canonical_body_and_digest(
    store: Store, line: list[ChainedEvent]
) -> None:
    for n, ev in enumerate(line, start=1):
        expected = numbered(n)
        assert ev.event.type == expected.type
        assert ev.event.at == expected.at
        assert (ev.event.client_id, ev.event.user_id) == ("agent", "user-1")
        assert (ev.event.request_id, ev.event.grant_id) == (REQUEST, "grant-1")
        assert ev.event.data == {"scope": "inbox.read", "n": n}
        assert ev.data_text == canonical_json(expected.data)
        assert ev.body_sha256 == body_digest(canonical_json(expected.data))
    assert line[0].chain_hash == link(
        GENESIS,
        ChainEntry(
            LINE,
            1,
            "token.issued",
            NOW + 1,
            "agent",
            "user-1",
            REQUEST,
            "grant-1",
            body_digest('{"n":1,"scope":"inbox.read"}'),
        ),
    )
    assert line[1].chain_hash == link(
        line[0].chain_hash,
        ChainEntry(
            LINE,
            2,
            "token.issued",
            NOW + 2,
            "agent",
            "user-1",
            REQUEST,
            "grant-1",
            body_digest('{"n":2,"scope":"inbox.read"}'),
        ),
    )


async def test_each_lane_head_names_its_newest_event_and_link(
    store: Store, line: list[ChainedEvent]
) -> None:
    before, after = await lane_events(store, BEFORE), await lane_events(store, AFTER)
    expected = empty_heads() | {
        LINE: (10, line[-1].chain_hash),
        BEFORE: (5, before[-1].chain_hash),
        AFTER: (5, after[-1].chain_hash),
    }
    assert await heads(store) == expected
    report = await verify(store)
    assert report.heads == expected
    assert report.root == root_of(expected)


async def test_several_events_in_one_transaction_chain_in_order(store: Store) -> None:
    await append(store, numbered(1))
    await append(store, *(numbered(n) for n in range(2, 7)))
    await append(store, numbered(7), numbered(8))
    events = await lane_events(store)
    assert [e.event.seq for e in events] == list(range(1, 9))
    assert [e.position for e in events] == list(range(1, 9))
    assert [e.event.data["n"] for e in events] == list(range(1, 9))
    assert [e.chain_hash for e in events] == recomputed(events)
    assert (await heads(store))[LINE] == (8, events[-1].chain_hash)
    assert (await verify(store)).ok


async def test_one_transaction_touching_several_lanes_chains_each(store: Store) -> None:
    order = [AFTER, LINE, BEFORE, LINE, AFTER, BEFORE, LINE]
    await append(store, *(in_lane(lane, i=i) for i, lane in enumerate(order)))
    # Seq keeps the order of appends; each lane gets the next positions, in that order.
    everything = await every_event(store)
    assert [(e.event.seq, e.lane, e.event.data["i"]) for e in everything] == [
        (i + 1, lane, i) for i, lane in enumerate(order)
    ]
    by_lane = assert_lanes_whole(everything)
    assert {lane: [e.event.seq for e in evs] for lane, evs in by_lane.items()} == {
        AFTER: [1, 5],
        LINE: [2, 4, 7],
        BEFORE: [3, 6],
    }
    expected = empty_heads() | {
        lane: (len(evs), evs[-1].chain_hash) for lane, evs in by_lane.items()
    }
    assert await heads(store) == expected

    # The next transaction goes on in each lane it touches, and leaves the others be.
    await append(store, in_lane(LINE, i=7), in_lane(BEFORE, i=8), in_lane(0, i=9))
    by_lane = assert_lanes_whole(await every_event(store))
    assert {lane: [e.event.data["i"] for e in evs] for lane, evs in by_lane.items()} == {
        0: [9],
        BEFORE: [2, 5, 8],
        LINE: [1, 3, 6, 7],
        AFTER: [0, 4],
    }
    assert (await heads(store))[AFTER] == expected[AFTER]
    report = await verify(store)
    assert report.ok, report.problems
    assert report.events == 10


async def test_events_are_buffered_until_the_transaction_commits(store: Store) -> None:
    await append(store, numbered(1))
    before = await heads(store)
    async with store.transaction() as tx:
        await tx.append(numbered(2))
        await tx.append(in_lane(AFTER))
        # Not chained yet: heads move only in the last statements before COMMIT.
        assert await tx.audit_heads() == before
        assert [e.seq for e in await tx.tail(10)] == [1]
    after = await heads(store)
    assert (after[LINE][0], after[AFTER][0]) == (2, 1)


async def test_a_rolled_back_transaction_leaves_no_event_and_keeps_every_head(
    store: Store,
) -> None:
    await append(store, numbered(1), numbered(2), numbered(3), in_lane(BEFORE))
    before = await heads(store)
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.append(numbered(4))
            await tx.append(in_lane(BEFORE))
            await tx.append(in_lane(AFTER))
            raise Boom
    assert await heads(store) == before
    assert [e.event.seq for e in await lane_events(store)] == [1, 2, 3]
    assert await lane_events(store, AFTER) == []
    # The next commit continues right after each head: no gap where the rollback was.
    await append(store, numbered(6), in_lane(AFTER))
    events = await lane_events(store)
    assert [(e.position, e.event.data["n"]) for e in events] == [(1, 1), (2, 2), (3, 3), (4, 6)]
    assert [e.position for e in await lane_events(store, AFTER)] == [1]
    report = await verify(store)
    assert report.ok, report.problems
    assert report.heads[LINE] == (4, events[-1].chain_hash)


def crossing(w: int, r: int) -> list[int]:
    """The workers take the same lanes in different orders: heads taken in append order
    rather than lane order would deadlock on PostgreSQL."""
    orders = [[BEFORE, LINE, AFTER, BEFORE], [AFTER, LINE, BEFORE]]
    return orders[w % 2][w // 2 :]


#: For worker w and round r, the lanes its transaction appends to, in append order.
PLANS: dict[str, Callable[[int, int], list[int]]] = {
    "a lane per worker": lambda w, r: [1 + 4 * w] * (1 + r % 2),
    "one lane for all": lambda w, r: [LINE] * (1 + r % 2),
    "crossing lanes": crossing,
}


@pytest.mark.parametrize("plan", sorted(PLANS))
async def test_concurrent_transactions_from_several_stores_leave_every_lane_verifiable(
    store: Store, open_backend: Callable[[], Store], plan: str
) -> None:
    stores = [store, *(open_backend() for _ in range(3))]
    rounds = 20
    lanes_of = PLANS[plan]

    async def worker(w: int, mine: Store) -> None:
        for r in range(rounds):
            async with mine.transaction() as tx:
                for part, lane in enumerate(lanes_of(w, r)):
                    await tx.append(in_lane(lane, worker=w, round=r, part=part))
                    # A read inside the transaction lets PostgreSQL interleave the workers.
                    await tx.audit_heads()
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(w, s) for w, s in enumerate(stores)))

    events = await every_event(store)
    planned = [(w, r, lanes_of(w, r)) for w in range(len(stores)) for r in range(rounds)]
    assert len(events) == sum(len(lanes) for _, _, lanes in planned)
    assert [e.event.seq for e in events] == list(range(1, len(events) + 1))
    seen = {(e.event.data["worker"], e.event.data["round"], e.event.data["part"]) for e in events}
    assert len(seen) == len(events)
    by_lane = assert_lanes_whole(events)
    assert set(by_lane) == {lane for _, _, lanes in planned for lane in lanes}
    # A transaction's events in a lane are chained together, never split by another's.
    for lane, chained in by_lane.items():
        spans: dict[tuple[int, int], list[int]] = {}
        for ev in chained:
            spans.setdefault((ev.event.data["worker"], ev.event.data["round"]), []).append(
                ev.position
            )
        for positions in spans.values():
            assert positions == list(range(positions[0], positions[0] + len(positions))), lane
    assert await heads(store) == empty_heads() | {
        lane: (len(chained), chained[-1].chain_hash) for lane, chained in by_lane.items()
    }
    report = await verify(store)
    assert report.ok, report.problems
    assert report.events == len(events)


async def test_stores_in_separate_threads_leave_every_lane_verifiable(
    store: Store, database_url: str
) -> None:
    """Each thread has its own event loop and connection, like a worker process: on SQLite
    the writers really wait on each other's locks, which one event loop never shows. Half the
    threads append to two lanes in one order, half in the other, and all share LINE."""
    threads, rounds = 4, 12
    barrier = threading.Barrier(threads)

    def contender(w: int) -> None:
        pair = (BEFORE, AFTER) if w % 2 else (AFTER, BEFORE)

        async def run() -> None:
            mine = open_store(database_url)
            try:
                barrier.wait(timeout=10)
                for r in range(rounds):
                    await append(
                        mine,
                        in_lane(pair[0], worker=w, round=r, part=0),
                        in_lane(LINE, worker=w, round=r, part=1),
                        in_lane(pair[1], worker=w, round=r, part=2),
                    )
            finally:
                await mine.close()

        asyncio.run(run())

    await asyncio.gather(*(asyncio.to_thread(contender, w) for w in range(threads)))

    events = await every_event(store)
    assert len(events) == threads * rounds * 3
    assert [e.event.seq for e in events] == list(range(1, len(events) + 1))
    # Each transaction's three events got consecutive seqs.
    for first, second, third in zip(events[::3], events[1::3], events[2::3], strict=True):
        assert [e.event.data["part"] for e in (first, second, third)] == [0, 1, 2]
        assert (
            len({(e.event.data["worker"], e.event.data["round"]) for e in (first, second, third)})
            == 1
        )
    by_lane = assert_lanes_whole(events)
    assert {lane: len(chained) for lane, chained in by_lane.items()} == {
        BEFORE: threads * rounds,
        LINE: threads * rounds,
        AFTER: threads * rounds,
    }
    report = await verify(store)
    assert report.ok, report.problems
    assert report.heads[LINE] == (threads * rounds, by_lane[LINE][-1].chain_hash)


async def test_an_append_committed_while_verify_runs_is_no_tampering(
    store: Store, open_backend: Callable[[], Store], line: list[ChainedEvent]
) -> None:
    """``grantline audit verify`` runs against a live server: an event committed to a lane
    between verify's last read of its events and its read of the heads must not read as a
    deletion."""
    server = open_backend()
    committed: list[int] = []

    class LiveLog:
        """The reader's log, with the server committing once to LINE right before verify
        reads the heads at the end of LINE."""

        def __init__(self, log: AuditLog) -> None:
            self._log = log
            self._lane = -1

        async def chained_events(self, lane: int, after: int, limit: int) -> list[ChainedEvent]:
            self._lane = lane
            return await self._log.chained_events(lane, after, limit)

        async def audit_heads(self) -> dict[int, tuple[int, str]]:
            if self._lane == LINE and not committed:
                await append(server, numbered(11))
                committed.append(11)
            return await self._log.audit_heads()

    async with store.reader() as tx:
        report = await verify_chain(cast(AuditLog, LiveLog(tx)))
    assert committed == [11]
    assert report.ok, report.problems
    assert report.events == 21
    newest = (await lane_events(store))[-1]
    assert (newest.event.data["n"], report.heads[LINE]) == (11, (11, newest.chain_hash))


# -- retention -------------------------------------------------------------------------------


async def test_pruned_bodies_keep_every_lane_verifiable(
    store: Store, line: list[ChainedEvent]
) -> None:
    before = await every_event(store)
    async with store.transaction() as tx:
        # Events at NOW + 1 .. NOW + 5: the line's first five and the five beside them.
        assert await tx.prune_event_bodies(NOW + 6) == 10
    async with store.transaction() as tx:
        assert await tx.prune_event_bodies(NOW + 6) == 0
    events = await lane_events(store)
    assert [e.data_text is None for e in events] == [True] * 5 + [False] * 5
    assert [e.body_sha256 for e in events] == [e.body_sha256 for e in line]
    assert [e.chain_hash for e in events] == [e.chain_hash for e in line]
    assert events[0].event.data == {}
    assert events[5].event.data == {"scope": "inbox.read", "n": 6}
    assert [e.chain_hash for e in await every_event(store)] == [e.chain_hash for e in before]
    report = await verify(store)
    assert report.ok, report.problems
    assert (report.events, report.pruned_bodies) == (20, 10)


async def test_a_forged_body_put_back_after_pruning_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    async with store.transaction() as tx:
        await tx.prune_event_bodies(NOW + 6)
    await tamper(
        "UPDATE audit_events SET data = ? WHERE lane = ? AND position = 2",
        '{"n":2,"scope":"admin"}',
        LINE,
    )
    assert named(await verify(store)) == [
        ("event 3 (lane 7 position 2)", "the body of event 3 (token.issued) was changed")
    ]


async def test_a_pruned_event_s_header_is_still_covered(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    async with store.transaction() as tx:
        await tx.prune_event_bodies(NOW + 6)
    await tamper("UPDATE audit_events SET client_id = ? WHERE seq = 5", "mallory")
    assert named(await verify(store)) == [
        (
            "event 5 (lane 7 position 3)",
            "event 5 does not link to its predecessor in lane 7: "
            "its header, order or link was edited",
        )
    ]


# -- checkpoints -------------------------------------------------------------------------------


async def test_checkpoints_are_kept_once_per_root_and_listed_in_order(store: Store) -> None:
    rows = [
        AuditCheckpointRow(root="b" * 64, at=NOW + 7, jws="jws-7"),
        AuditCheckpointRow(root="c" * 64, at=NOW + 3, jws="jws-3c"),
        AuditCheckpointRow(root="a" * 64, at=NOW + 3, jws="jws-3a"),
    ]
    async with store.transaction() as tx:
        assert [await tx.add_checkpoint(r) for r in rows] == [True, True, True]
    async with store.transaction() as tx:
        duplicate = AuditCheckpointRow(root="b" * 64, at=NOW + 8, jws="other")
        assert await tx.add_checkpoint(duplicate) is False
    async with store.reader() as tx:
        assert await tx.list_checkpoints() == [rows[2], rows[1], rows[0]]


async def test_an_empty_log_lists_no_checkpoints(store: Store) -> None:
    async with store.reader() as tx:
        assert await tx.list_checkpoints() == []


async def test_a_signed_checkpoint_names_every_lane_head_and_matches_verify(
    store: Store, line: list[ChainedEvent]
) -> None:
    checkpoint = await take_checkpoint(store)
    current = await heads(store)
    assert (checkpoint.issuer, checkpoint.at) == (ISSUER, NOW)
    assert checkpoint.heads == current
    assert checkpoint.heads[LINE] == (10, line[-1].chain_hash)
    assert checkpoint.root == root_of(current)
    # Checkpointing unchanged heads again keeps the first one.
    await checkpoint_now(store, ISSUER, NOW + 60, secret=SECRET_KEY)
    async with store.reader() as tx:
        kept = await tx.list_checkpoints()
    assert [(c.root, c.at) for c in kept] == [(checkpoint.root, NOW)]
    report = await verify(store, [checkpoint])
    assert report.ok, report.problems
    assert (report.checkpoints, report.root) == (1, checkpoint.root)
    # A change in any one lane is a new set of heads, so a new checkpoint.
    await append(store, in_lane(0))
    later = await take_checkpoint(store)
    assert later.root != checkpoint.root
    assert {lane for lane in range(LANES) if later.heads[lane] != checkpoint.heads[lane]} == {0}
    async with store.reader() as tx:
        assert len(await tx.list_checkpoints()) == 2


async def signed_payload(store: Store, payload: dict[str, Any]) -> str:
    """A checkpoint JWS of ``payload``, signed with the instance's own key: what only someone
    holding that key could make."""
    async with store.reader() as tx:
        [key] = [k for k in await tx.list_signing_keys(NOW) if k.active]
    header = {"alg": key.alg, "kid": key.kid, "typ": CHECKPOINT_TYP}
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return jws.serialize_compact(header, body, parsed_key(key, SECRET_KEY), algorithms=[key.alg])


def checkpoint_payload(current: dict[int, tuple[int, str]]) -> dict[str, Any]:
    listed = [[lane, p, h] for lane, (p, h) in sorted(current.items())]
    return {"iss": ISSUER, "format": FORMAT, "at": NOW, "root": root_of(current), "heads": listed}


async def test_a_checkpoint_built_by_hand_like_the_server_s_reads_back(
    store: Store, line: list[ChainedEvent]
) -> None:
    """The control for the refusals below: the same payload, unaltered, is a checkpoint."""
    current = await heads(store)
    token = await signed_payload(store, checkpoint_payload(current))
    async with store.reader() as tx:
        checkpoint = await read_checkpoint(token, tx, secret=SECRET_KEY)
    assert checkpoint.heads == current
    assert (await verify(store, [checkpoint])).ok


def alter_heads(listed: list[list[Any]], how: str, line: list[ChainedEvent]) -> None:
    """Change the signed heads (one ``[lane, position, hash]`` per lane, in lane order)."""
    if how == "rewound":
        # Back to an earlier head of the lane: what hiding its newest event would need.
        listed[LINE][1:] = [9, line[8].chain_hash]
    elif how == "hash":
        listed[LINE][2] = "f" * 64
    elif how == "position":
        listed[LINE][1] = 11
    elif how == "lane dropped":
        del listed[LINE]
    else:
        listed[BEFORE][0], listed[AFTER][0] = AFTER, BEFORE


@pytest.mark.parametrize("how", ["rewound", "hash", "position", "lane dropped", "lanes swapped"])
async def test_a_signed_checkpoint_whose_heads_do_not_match_its_root_is_refused(
    store: Store, line: list[ChainedEvent], how: str
) -> None:
    payload = checkpoint_payload(await heads(store))
    alter_heads(payload["heads"], how, line)
    token = await signed_payload(store, payload)
    async with store.reader() as tx:
        with pytest.raises(JoseFailure, match="^the checkpoint's heads do not match its root$"):
            await read_checkpoint(token, tx, secret=SECRET_KEY)


@pytest.mark.parametrize(
    "heads_value",
    [
        None,
        "[]",
        [[LINE, 10]],
        [[LINE, 10, "a" * 64, 1]],
        [[LANES, 1, "a" * 64]],
        [[-1, 1, "a" * 64]],
        [[LINE, True, "a" * 64]],
        [[LINE, 1.0, "a" * 64]],
        [[LINE, 1, 7]],
        [[LINE, 1, "a" * 64], [LINE, 2, "b" * 64]],
        {"7": [1, "a" * 64]},
    ],
    ids=[
        "missing",
        "text",
        "short",
        "long",
        "lane 16",
        "lane -1",
        "bool position",
        "float position",
        "hash not text",
        "lane twice",
        "object",
    ],
)
async def test_a_signed_checkpoint_with_malformed_heads_is_refused(
    store: Store, heads_value: object
) -> None:
    payload = checkpoint_payload(await heads(store))
    if heads_value is None:
        del payload["heads"]
    else:
        payload["heads"] = heads_value
    token = await signed_payload(store, payload)
    async with store.reader() as tx:
        with pytest.raises(JoseFailure, match="^the checkpoint's heads are missing or malformed$"):
            await read_checkpoint(token, tx, secret=SECRET_KEY)


# -- tampering ---------------------------------------------------------------------------------


async def test_an_edited_body_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 7", '{"n":4,"scope":"admin"}')
    report = await verify(store)
    assert not report.ok
    assert report.problems == [
        Problem(7, LINE, 4, "the body of event 7 (token.issued) was changed")
    ]
    assert report.problems[0].where == "event 7 (lane 7 position 4)"
    # Verify stops at the first bad event: the report covers what came before it, here the
    # lanes before LINE (BEFORE's five events) and LINE's first three.
    assert report.events == 5 + 3
    assert set(report.heads) == set(range(LINE))


async def test_a_body_rewritten_to_the_same_meaning_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 17", '{"scope":"inbox.read","n":9}')
    assert named(await verify(store)) == [
        ("event 17 (lane 7 position 9)", "the body of event 17 (token.issued) was changed")
    ]


async def test_an_edited_body_digest_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("UPDATE audit_events SET body_sha256 = ? WHERE seq = 7", body_digest("{}"))
    assert named(await verify(store)) == [
        ("event 7 (lane 7 position 4)", "the body of event 7 (token.issued) was changed")
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("type", "grant.revoked"),
        ("at", NOW + 999),
        ("client_id", "mallory"),
        ("client_id", None),
        ("user_id", "user-2"),
        ("request_id", None),
        ("request_id", id_in_lane(LINE, "other-req")),
        ("grant_id", "grant-9"),
        ("chain_hash", "f" * 64),
    ],
)
async def test_an_edited_header_column_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper, column: str, value: object
) -> None:
    # The column name is one of the fixed names above.
    await tamper(f"UPDATE audit_events SET {column} = ? WHERE seq = 9", value)  # noqa: S608
    report = await verify(store)
    assert named(report) == [
        (
            "event 9 (lane 7 position 5)",
            "event 9 does not link to its predecessor in lane 7: "
            "its header, order or link was edited",
        )
    ]
    assert report.events == 5 + 4


async def test_an_edited_event_of_a_lane_verified_first_is_named_in_that_lane(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("UPDATE audit_events SET at = at + 1 WHERE seq = 10")
    await tamper("UPDATE audit_events SET at = at + 1 WHERE seq = 9")
    assert named(await verify(store)) == [
        (
            "event 10 (lane 2 position 3)",
            "event 10 does not link to its predecessor in lane 2: "
            "its header, order or link was edited",
        )
    ]


async def test_an_edited_body_with_its_digest_recomputed_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    forged = '{"n":4,"scope":"admin"}'
    await tamper(
        "UPDATE audit_events SET data = ?, body_sha256 = ? WHERE seq = 7",
        forged,
        body_digest(forged),
    )
    assert named(await verify(store)) == [
        (
            "event 7 (lane 7 position 4)",
            "event 7 does not link to its predecessor in lane 7: "
            "its header, order or link was edited",
        )
    ]


async def test_a_deleted_middle_event_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events WHERE lane = ? AND position = 5", LINE)
    report = await verify(store)
    assert report.problems == [
        Problem(
            11,
            LINE,
            6,
            "event 11 does not follow lane 7 position 4: events between them were deleted, "
            "or rows were reordered",
        )
    ]
    assert report.problems[0].where == "event 11 (lane 7 position 6)"


async def test_a_deleted_event_at_a_batch_boundary_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "_BATCH", 3)
    assert (await verify(store)).ok
    await tamper("DELETE FROM audit_events WHERE lane = ? AND position = 4", LINE)
    assert named(await verify(store)) == [
        (
            "event 9 (lane 7 position 5)",
            "event 9 does not follow lane 7 position 3: events between them were deleted, "
            "or rows were reordered",
        )
    ]


async def test_a_deleted_first_event_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events WHERE seq = 1")
    assert named(await verify(store)) == [
        (
            "event 3 (lane 7 position 2)",
            "event 3 does not follow lane 7 position 0: events between them were deleted, "
            "or rows were reordered",
        )
    ]


async def test_positions_swapped_within_a_lane_are_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    for sql in (
        "UPDATE audit_events SET position = -1 WHERE lane = ? AND position = 4",
        "UPDATE audit_events SET position = 4 WHERE lane = ? AND position = 7",
        "UPDATE audit_events SET position = 7 WHERE lane = ? AND position = -1",
    ):
        await tamper(sql, LINE)
    events = await lane_events(store)
    assert [e.event.data["n"] for e in events] == [1, 2, 3, 7, 5, 6, 4, 8, 9, 10]
    assert named(await verify(store)) == [
        (
            "event 13 (lane 7 position 4)",
            "event 13 does not link to its predecessor in lane 7: "
            "its header, order or link was edited",
        )
    ]


async def test_seqs_swapped_within_a_lane_are_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    """``seq`` is not linked, but every reader (tail, trace, export) orders by it: swapping the
    seqs of two events of one authorization would reorder its line unseen."""
    for sql in (
        "UPDATE audit_events SET seq = -1 WHERE seq = 7",
        "UPDATE audit_events SET seq = 7 WHERE seq = 13",
        "UPDATE audit_events SET seq = 13 WHERE seq = -1",
    ):
        await tamper(sql)
    events = await every_event(store)
    assert [e.event.data["n"] for e in events if e.lane == LINE] == [1, 2, 3, 7, 5, 6, 4, 8, 9, 10]
    assert named(await verify(store)) == [
        (
            "event 9 (lane 7 position 5)",
            "event 9 follows event 13 in lane 7 but not in seq order: rows were reordered",
        )
    ]


async def test_an_event_moved_to_a_later_lane_is_named_where_it_left(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper(
        "UPDATE audit_events SET lane = ?, position = 6 WHERE lane = ? AND position = 6",
        AFTER,
        LINE,
    )
    assert [e.event.seq for e in await lane_events(store, AFTER)][-1] == 11
    assert named(await verify(store)) == [
        (
            "event 13 (lane 7 position 7)",
            "event 13 does not follow lane 7 position 5: events between them were deleted, "
            "or rows were reordered",
        )
    ]


@pytest.mark.parametrize(("lane", "position"), [(BEFORE, 6), (0, 1)])
async def test_an_event_moved_to_an_earlier_lane_is_named_where_it_arrived(
    store: Store, line: list[ChainedEvent], tamper: Tamper, lane: int, position: int
) -> None:
    await tamper("UPDATE audit_events SET lane = ?, position = ? WHERE seq = 19", lane, position)
    assert named(await verify(store)) == [
        (
            f"event 19 (lane {lane} position {position})",
            f"event 19 does not link to its predecessor in lane {lane}: "
            "its header, order or link was edited",
        )
    ]


async def test_an_event_moved_with_its_new_lane_recomputed_leaves_its_old_lane_short(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    """Moving the line's newest event into BEFORE with a link and head that fit there:
    BEFORE verifies, but LINE's head still names the position the event left."""
    before = await lane_events(store, BEFORE)
    moved = dataclasses.replace(line[-1].entry(), lane=BEFORE, position=6)
    forged = link(before[-1].chain_hash, moved)
    await tamper(
        "UPDATE audit_events SET lane = ?, position = 6, chain_hash = ? WHERE seq = 19",
        BEFORE,
        forged,
    )
    await tamper("UPDATE audit_head SET position = 6, hash = ? WHERE lane = ?", forged, BEFORE)
    report = await verify(store)
    assert named(report) == [
        (
            "lane 7 position 10",
            "lane 7 ends at position 9 but its head names position 10: "
            "the newest events were deleted",
        )
    ]
    assert report.heads[BEFORE] == (6, forged)


async def test_the_newest_events_of_a_lane_deleted_are_named_by_its_head(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events WHERE lane = ? AND position > 7", LINE)
    report = await verify(store)
    assert report.problems == [
        Problem(
            None,
            LINE,
            8,
            "lane 7 ends at position 7 but its head names position 10: "
            "the newest events were deleted",
        )
    ]
    assert report.problems[0].where == "lane 7 position 8"
    assert report.events == 5 + 7


async def test_every_event_of_a_lane_deleted_is_named_by_its_head(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events WHERE lane = ?", AFTER)
    assert named(await verify(store)) == [
        (
            "lane 12 position 1",
            "lane 12 ends at position 0 but its head names position 5: "
            "the newest events were deleted",
        )
    ]


async def test_every_event_deleted_is_named_by_the_first_lane_s_head(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    await tamper("DELETE FROM audit_events")
    assert named(await verify(store)) == [
        (
            "lane 2 position 1",
            "lane 2 ends at position 0 but its head names position 5: "
            "the newest events were deleted",
        )
    ]


async def test_the_newest_event_rewritten_with_its_link_is_named_by_the_lane_head(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    """The last link of a lane can be recomputed by anyone; its head still holds the original."""
    forged = '{"n":10,"scope":"admin"}'
    entry = dataclasses.replace(line[-1].entry(), body_sha256=body_digest(forged))
    await tamper(
        "UPDATE audit_events SET data = ?, body_sha256 = ?, chain_hash = ? WHERE seq = 19",
        forged,
        entry.body_sha256,
        link(line[8].chain_hash, entry),
    )
    report = await verify(store)
    assert report.problems == [
        Problem(
            None,
            LINE,
            10,
            "lane 7 position 10 does not match the lane head: "
            "the newest event or the head was rewritten",
        )
    ]
    assert report.problems[0].where == "lane 7 position 10"


async def test_an_event_added_behind_the_lane_head_s_back_is_named(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    forged = '{"n":11,"scope":"admin"}'
    entry = ChainEntry(
        LINE,
        11,
        "token.issued",
        NOW + 11,
        "agent",
        "user-1",
        REQUEST,
        "grant-1",
        body_digest(forged),
    )
    await tamper(
        "INSERT INTO audit_events (type, at, client_id, user_id, request_id, grant_id, "
        "data, body_sha256, chain_hash, lane, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        entry.type,
        entry.at,
        entry.client_id,
        entry.user_id,
        entry.request_id,
        entry.grant_id,
        forged,
        entry.body_sha256,
        link(line[-1].chain_hash, entry),
        entry.lane,
        entry.position,
    )
    report = await verify(store)
    assert report.problems == [
        Problem(
            None,
            LINE,
            11,
            "lane 7 position 11 is past the lane head (position 10): "
            "events were inserted without moving the head",
        )
    ]
    assert report.problems[0].where == "lane 7 position 11"


async def rewind(tamper: Tamper, line: list[ChainedEvent], keep: int) -> None:
    """Everything an intruder with the database alone can do to hide the line's events after
    position ``keep``: delete them, rewind the lane head, delete the stored checkpoints."""
    await tamper("DELETE FROM audit_events WHERE lane = ? AND position > ?", LINE, keep)
    await tamper(
        "UPDATE audit_head SET position = ?, hash = ? WHERE lane = ?",
        keep,
        line[keep - 1].chain_hash,
        LINE,
    )
    await tamper("DELETE FROM audit_checkpoints")


async def test_truncation_with_the_lane_head_rewound_is_caught_only_by_an_earlier_checkpoint(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    checkpoint = await take_checkpoint(store)
    assert checkpoint.heads[LINE][0] == 10
    await rewind(tamper, line, 7)

    without = await verify(store)
    assert without.ok, without.problems
    assert (without.events, without.heads[LINE]) == (17, (7, line[6].chain_hash))

    assert named(await verify(store, [checkpoint])) == [
        (
            "lane 7 position 8",
            "lane 7 ends at position 7 but a checkpoint signed position 10: "
            "events were deleted from the end",
        )
    ]


async def test_truncation_refilled_to_the_checkpoint_s_position_is_caught_by_it(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    """After the rewind the server appends on: by the time verify runs, the lane may again
    reach the checkpoint's position, with other events there."""
    checkpoint = await take_checkpoint(store)
    await rewind(tamper, line, 7)
    await append(store, numbered(8, at=NOW + 100), numbered(9), numbered(10))
    later = await take_checkpoint(store)
    assert later.heads[LINE][0] == 10
    assert later.heads[LINE] == (await heads(store))[LINE]
    assert later.heads[LINE][1] != checkpoint.heads[LINE][1]

    assert (await verify(store, [later])).ok
    expected = [
        (
            "event 23 (lane 7 position 10)",
            "event 23 differs from the one a checkpoint signed at lane 7 position 10",
        )
    ]
    assert named(await verify(store, [checkpoint])) == expected
    # Every checkpoint given is checked, whatever else is given beside it.
    assert named(await verify(store, [checkpoint, later])) == expected
    assert named(await verify(store, [later, checkpoint])) == expected


async def test_a_recomputed_lane_with_a_forged_head_is_caught_only_by_an_older_checkpoint(
    store: Store, tamper: Tamper
) -> None:
    for n in range(1, 7):
        await append(store, numbered(n), beside(n))
    before_edit = await take_checkpoint(store)
    await append(store, numbered(1_000, at=NOW + 2))  # unrelated: an event before the edit
    early = await take_checkpoint(store)
    for n in range(8, 11):
        await append(store, numbered(n), beside(n))
    assert (before_edit.heads[LINE][0], early.heads[LINE][0]) == (6, 7)

    # Rewrite the line's third body, then every digest and link from there on, and the head.
    forged = '{"n":3,"scope":"admin"}'
    await tamper("UPDATE audit_events SET data = ? WHERE lane = ? AND position = 3", forged, LINE)
    events = await lane_events(store)
    prev = events[1].chain_hash
    for ev in events[2:]:
        assert ev.data_text is not None
        entry = dataclasses.replace(ev.entry(), body_sha256=body_digest(ev.data_text))
        prev = link(prev, entry)
        await tamper(
            "UPDATE audit_events SET body_sha256 = ?, chain_hash = ? WHERE seq = ?",
            entry.body_sha256,
            prev,
            ev.event.seq,
        )
    await tamper("UPDATE audit_head SET hash = ? WHERE lane = ?", prev, LINE)
    await tamper("DELETE FROM audit_checkpoints")

    without = await verify(store)
    assert without.ok, without.problems
    assert without.heads[LINE] == (10, prev)

    assert named(await verify(store, [before_edit])) == [
        (
            "event 11 (lane 7 position 6)",
            "event 11 differs from the one a checkpoint signed at lane 7 position 6",
        )
    ]
    assert named(await verify(store, [early])) == [
        (
            "event 13 (lane 7 position 7)",
            "event 13 differs from the one a checkpoint signed at lane 7 position 7",
        )
    ]


async def test_a_checkpoint_before_the_edit_cannot_see_it(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    """What a checkpoint proves in a lane is the stretch up to its head there, not what
    follows it."""
    signed = empty_heads() | {LINE: (2, line[1].chain_hash)}
    checkpoint = Checkpoint(ISSUER, NOW, "kid", signed, root_of(signed))
    forged = '{"n":5,"scope":"admin"}'
    await tamper("UPDATE audit_events SET data = ? WHERE seq = 9", forged)
    events = await lane_events(store)
    prev = events[3].chain_hash
    for ev in events[4:]:
        assert ev.data_text is not None
        entry = dataclasses.replace(ev.entry(), body_sha256=body_digest(ev.data_text))
        prev = link(prev, entry)
        await tamper(
            "UPDATE audit_events SET body_sha256 = ?, chain_hash = ? WHERE seq = ?",
            entry.body_sha256,
            prev,
            ev.event.seq,
        )
    await tamper("UPDATE audit_head SET hash = ? WHERE lane = ?", prev, LINE)
    report = await verify(store, [checkpoint])
    assert report.ok, report.problems
    # A checkpoint that signed LINE at position 5 sees it.
    signed[LINE] = (5, line[4].chain_hash)
    covering = Checkpoint(ISSUER, NOW, "kid", signed, root_of(signed))
    assert [p.where for p in (await verify(store, [covering])).problems] == [
        "event 9 (lane 7 position 5)"
    ]


async def test_a_checkpoint_of_every_lane_catches_a_rewind_in_any_of_them(
    store: Store, line: list[ChainedEvent], tamper: Tamper
) -> None:
    """One checkpoint guards all sixteen lanes: rewinding a lane other than the busy one is
    caught by the same checkpoint."""
    checkpoint = await take_checkpoint(store)
    after = await lane_events(store, AFTER)
    await tamper("DELETE FROM audit_events WHERE lane = ? AND position > 3", AFTER)
    await tamper(
        "UPDATE audit_head SET position = 3, hash = ? WHERE lane = ?", after[2].chain_hash, AFTER
    )
    assert (await verify(store)).ok
    report = await verify(store, [checkpoint])
    assert named(report) == [
        (
            "lane 12 position 4",
            "lane 12 ends at position 3 but a checkpoint signed position 5: "
            "events were deleted from the end",
        )
    ]
    # Every lane before it verified against the checkpoint.
    assert report.events == 20 - 2

"""The chain link, the lane of an event and the root of the lane heads: what each commits to,
and that nothing they cover can change unseen."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grantline.audit.chain as chain
from grantline.audit.chain import (
    FORMAT,
    GENESIS,
    LANES,
    ChainEntry,
    body_digest,
    encode_header,
    heads_root,
    lane_of,
    link,
)
from tests.audit.lanes import id_in_lane

BODY = '{"scope":"inbox.read"}'

ENTRY = ChainEntry(
    lane=5,
    position=7,
    type="token.issued",
    at=1_700_000_000,
    client_id="agent",
    user_id="user-1",
    request_id="r" * 64,
    grant_id="grant-1",
    body_sha256=body_digest(BODY),
)

#: Pinned: links already stored must keep verifying, so the v1 encoding may never drift.
ENTRY_LINK_AFTER_GENESIS = "d346daf5a523d19bfcfeff53539ed6a50532cea09c53289f449d40ebc715cf66"

#: For each header field, a value other than ENTRY's (None where the field may be absent).
CHANGED_FIELDS: dict[str, Any] = {
    "lane": 6,
    "position": 8,
    "type": "token.refreshed",
    "at": 1_700_000_001,
    "client_id": "agent-2",
    "user_id": "user-2",
    "request_id": "s" * 64,
    "grant_id": "grant-2",
    "body_sha256": body_digest('{"scope":"invoices.pay"}'),
}

#: Sixteen heads, each lane at a position of its own with a hash of its own.
HEADS = [(lane, lane + 1, hashlib.sha256(str(lane).encode()).hexdigest()) for lane in range(16)]

#: Pinned like the link: checkpoints already signed must keep matching their heads.
HEADS_ROOT = "7985adbf41c37a98571b04b1543ec8bd45f29a110a8644ad06b38d226fcee932"


def test_genesis_is_sixty_four_zeros() -> None:
    assert GENESIS == "0" * 64


def test_body_digest_is_the_sha256_of_the_stored_text() -> None:
    # The SHA-256 of "{}" is a published constant; it checks the digest is plain SHA-256.
    assert body_digest("{}") == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert body_digest(BODY) == hashlib.sha256(BODY.encode()).hexdigest()


def test_body_digest_covers_the_text_byte_for_byte() -> None:
    # The same JSON value written differently is a different body: verify digests what is
    # stored, so a rewrite that keeps the meaning is still caught.
    assert body_digest('{"a":1}') != body_digest('{"a": 1}')
    assert body_digest('{"name":"Zoë"}') == hashlib.sha256('{"name":"Zoë"}'.encode()).hexdigest()
    assert body_digest('{"name":"Zoë"}') != body_digest('{"name":"Zoe"}')


# -- the link ------------------------------------------------------------------------------


def test_link_is_a_pinned_function_of_prev_and_entry() -> None:
    assert link(GENESIS, ENTRY) == ENTRY_LINK_AFTER_GENESIS
    assert link(GENESIS, dataclasses.replace(ENTRY)) == ENTRY_LINK_AFTER_GENESIS


def test_link_is_sha256_hex() -> None:
    value = link(GENESIS, ENTRY)
    assert len(value) == 64
    assert set(value) <= set("0123456789abcdef")


def test_link_hashes_the_format_name_prev_and_every_header_field_in_order() -> None:
    header = [FORMAT, GENESIS, 5, 7, "token.issued", 1_700_000_000, "agent", "user-1"]
    header += ["r" * 64, "grant-1", body_digest(BODY)]
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True)
    assert link(GENESIS, ENTRY) == hashlib.sha256(text.encode("ascii")).hexdigest()


def test_the_global_seq_is_not_part_of_the_link() -> None:
    # Events of different lanes commit in any order, so only the place in the lane is linked.
    assert [f.name for f in dataclasses.fields(ChainEntry)] == [
        "lane",
        "position",
        "type",
        "at",
        "client_id",
        "user_id",
        "request_id",
        "grant_id",
        "body_sha256",
    ]


@pytest.mark.parametrize("field", sorted(CHANGED_FIELDS))
def test_changing_any_header_field_changes_the_link(field: str) -> None:
    changed = dataclasses.replace(ENTRY, **{field: CHANGED_FIELDS[field]})
    assert link(GENESIS, changed) != link(GENESIS, ENTRY)


def test_the_same_event_in_another_lane_or_place_links_apart() -> None:
    """What lets verify see an event moved to another lane, or two positions swapped."""
    places = {(lane, position) for lane in range(LANES) for position in (1, 2, 7)}
    links = {
        link(GENESIS, dataclasses.replace(ENTRY, lane=lane, position=position))
        for lane, position in places
    }
    assert len(links) == len(places)


def test_lane_and_position_do_not_run_together() -> None:
    # A concatenation would encode (lane 1, position 23) and (lane 12, position 3) alike.
    one = dataclasses.replace(ENTRY, lane=1, position=23)
    other = dataclasses.replace(ENTRY, lane=12, position=3)
    assert link(GENESIS, one) != link(GENESIS, other)


@pytest.mark.parametrize("field", ["client_id", "user_id", "request_id", "grant_id"])
def test_an_absent_id_links_apart_from_an_empty_or_null_named_one(field: str) -> None:
    values: tuple[Any, ...] = (None, "", "null", "None")
    links = [link(GENESIS, dataclasses.replace(ENTRY, **{field: value})) for value in values]
    assert len(set(links)) == 4
    absent = links[0]
    assert absent != link(GENESIS, ENTRY)


def test_moving_text_between_adjacent_fields_changes_the_link() -> None:
    # A plain concatenation would encode ("ab", "c") and ("a", "bc") alike.
    one = dataclasses.replace(ENTRY, client_id="ab", user_id="c")
    other = dataclasses.replace(ENTRY, client_id="a", user_id="bc")
    assert link(GENESIS, one) != link(GENESIS, other)
    quoted = dataclasses.replace(ENTRY, client_id='a","b', user_id=None)
    split = dataclasses.replace(ENTRY, client_id="a", user_id="b")
    assert link(GENESIS, quoted) != link(GENESIS, split)


def test_a_number_and_its_digits_as_text_link_apart() -> None:
    as_text = dataclasses.replace(ENTRY, client_id="7")
    assert link(GENESIS, as_text) != link(GENESIS, ENTRY)
    assert link(GENESIS, dataclasses.replace(ENTRY, position="7")) != link(GENESIS, ENTRY)  # type: ignore[arg-type]
    assert link(GENESIS, dataclasses.replace(ENTRY, lane="5")) != link(GENESIS, ENTRY)  # type: ignore[arg-type]


def test_non_ascii_ids_link_and_stay_distinct() -> None:
    accented = dataclasses.replace(ENTRY, client_id="agënt")
    plain = dataclasses.replace(ENTRY, client_id="agent")
    assert link(GENESIS, accented) != link(GENESIS, plain)
    assert link(GENESIS, accented) == link(GENESIS, dataclasses.replace(accented))


@pytest.mark.parametrize(
    "prev", ["1" + "0" * 63, "0" * 63 + "1", ENTRY_LINK_AFTER_GENESIS, "f" * 64, ""]
)
def test_changing_prev_changes_the_link(prev: str) -> None:
    assert link(prev, ENTRY) != link(GENESIS, ENTRY)


def test_each_link_depends_on_the_whole_history_of_its_lane() -> None:
    first = dataclasses.replace(ENTRY, position=1)
    second = dataclasses.replace(ENTRY, position=2)
    edited_first = dataclasses.replace(first, at=first.at + 1)
    assert link(link(GENESIS, first), second) != link(link(GENESIS, edited_first), second)


def test_the_format_name_is_part_of_the_link(monkeypatch: pytest.MonkeyPatch) -> None:
    before = link(GENESIS, ENTRY)
    monkeypatch.setattr(chain, "FORMAT", "grantline-audit-v2")
    assert link(GENESIS, ENTRY) != before
    monkeypatch.setattr(chain, "FORMAT", FORMAT)
    assert link(GENESIS, ENTRY) == before


def test_format_names_this_encoding() -> None:
    assert FORMAT == "grantline-audit-v1"


def test_entries_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENTRY.position = 8  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENTRY.lane = 6  # type: ignore[misc]


# -- the lane of an event ------------------------------------------------------------------


def test_there_are_sixteen_lanes() -> None:
    assert LANES == 16


@pytest.mark.parametrize(
    ("key", "lane"), [("", 2), ("r" * 64, 2), ("grant-1", 9), ("agent", 10), ("user-1", 4)]
)
def test_the_lane_is_pinned_to_the_first_four_bytes_of_the_key_s_sha256(
    key: str, lane: int
) -> None:
    """Pinned: stored events keep their lanes, and verify never recomputes them, but the
    migration and every process of one server must agree on them."""
    digest = hashlib.sha256(key.encode()).digest()
    assert int.from_bytes(digest[:4], "big") % 16 == lane
    assert lane_of(key, None, None, None) == lane


def test_an_event_s_lane_follows_its_request_else_grant_else_client_else_user() -> None:
    request, grant = id_in_lane(3, "req"), id_in_lane(8, "grant")
    client, user = id_in_lane(11, "client"), id_in_lane(14, "user")
    assert lane_of(request, grant, client, user) == 3
    assert lane_of(None, grant, client, user) == 8
    assert lane_of(None, None, client, user) == 11
    assert lane_of(None, None, None, user) == 14
    assert lane_of(None, None, None, None) == lane_of("", None, None, None) == 2


def test_one_authorization_keeps_its_lane_whatever_else_its_events_name() -> None:
    """Pushed, shown, decided, code, tokens: each names the pushed request, whichever user,
    grant and client come with it, so the line is one stretch of one lane."""
    request = id_in_lane(6, "req")
    named = [
        (None, None),
        ("agent", None),
        ("agent", "user-1"),
        ("other-agent", "user-2"),
    ]
    lanes = {
        lane_of(request, grant, client, user)
        for client, user in named
        for grant in (None, "grant-1", "grant-2")
    }
    assert lanes == {6}


def test_an_empty_id_counts_as_absent() -> None:
    grant = id_in_lane(12, "grant")
    assert lane_of("", grant, None, None) == 12


def test_non_ascii_ids_have_a_lane() -> None:
    expected = int.from_bytes(hashlib.sha256("agënt".encode()).digest()[:4], "big") % LANES
    assert lane_of(None, None, "agënt", None) == expected


def test_keys_spread_over_every_lane() -> None:
    lanes = [lane_of(f"req-{i}", None, None, None) for i in range(1_600)]
    counts = [lanes.count(lane) for lane in range(LANES)]
    # 100 expected per lane; a lane off by half would put two busy authorizations together.
    assert min(counts) > 50
    assert max(counts) < 150


def test_id_in_lane_finds_an_id_of_that_lane() -> None:
    for lane in range(LANES):
        assert lane_of(id_in_lane(lane, "req"), None, None, None) == lane
    with pytest.raises(ValueError, match="no lane 16"):
        id_in_lane(LANES, "req")


# -- the root of the lane heads ----------------------------------------------------------------


def test_heads_root_is_pinned() -> None:
    assert heads_root(HEADS) == HEADS_ROOT


def test_heads_root_hashes_the_format_name_and_the_heads_in_lane_order() -> None:
    text = json.dumps([FORMAT, [list(h) for h in HEADS]], separators=(",", ":"))
    assert heads_root(HEADS) == hashlib.sha256(text.encode("ascii")).hexdigest()
    assert heads_root([]) == hashlib.sha256(f'["{FORMAT}",[]]'.encode()).hexdigest()


def test_heads_root_does_not_depend_on_the_order_heads_are_given_in() -> None:
    assert heads_root(list(reversed(HEADS))) == HEADS_ROOT
    assert heads_root(HEADS[8:] + HEADS[:8]) == HEADS_ROOT


@pytest.mark.parametrize(
    "change",
    [
        lambda h: (h[0], h[1] + 1, h[2]),
        lambda h: (h[0], h[1], "0" * 64),
        lambda h: (h[0], h[1], h[2].upper()),
        lambda h: ((h[0] + 1) % 16, h[1], h[2]),
    ],
    ids=["position", "hash", "hash case", "lane"],
)
@pytest.mark.parametrize("lane", [0, 7, 15])
def test_changing_any_lane_s_head_changes_the_root(change: Any, lane: int) -> None:
    heads = [change(h) if h[0] == lane else h for h in HEADS]
    assert heads_root(heads) != HEADS_ROOT


def test_a_missing_lane_changes_the_root() -> None:
    assert heads_root(HEADS[:-1]) != HEADS_ROOT
    assert heads_root([*HEADS, (16, 1, GENESIS)]) != HEADS_ROOT


def test_the_format_name_is_part_of_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain, "FORMAT", "grantline-audit-v2")
    assert heads_root(HEADS) != HEADS_ROOT


_TEXT = st.one_of(st.none(), st.text(), st.sampled_from(["agent", "é", "\x00\x1f\x7f", "\ud800"]))


@settings(max_examples=500, deadline=None)
@given(
    prev=st.text(),
    lane=st.integers(0, LANES - 1),
    position=st.integers(min_value=0, max_value=2**70),
    kind=st.text(),
    at=st.integers(min_value=-(2**70), max_value=2**70),
    ids=st.tuples(_TEXT, _TEXT, _TEXT, _TEXT),
)
def test_the_header_encoding_is_the_standard_librarys_whatever_the_text(
    prev: str, lane: int, position: int, kind: str, at: int, ids: tuple[Any, ...]
) -> None:
    entry = ChainEntry(lane, position, kind, at, *ids, body_sha256="b" * 64)
    expected = json.dumps(
        [FORMAT, prev, lane, position, kind, at, *ids, "b" * 64],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    assert encode_header(prev, entry) == expected.encode("ascii")

"""The chain link: what an event commits to, and that nothing it covers can change unseen."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

import grantline.audit.chain as chain
from grantline.audit.chain import FORMAT, GENESIS, ChainEntry, body_digest, link

BODY = '{"scope":"inbox.read"}'

ENTRY = ChainEntry(
    seq=7,
    type="token.issued",
    at=1_700_000_000,
    client_id="agent",
    user_id="user-1",
    request_id="r" * 64,
    grant_id="grant-1",
    body_sha256=body_digest(BODY),
)

#: Pinned: links already stored must keep verifying, so the v1 encoding may never drift.
ENTRY_LINK_AFTER_GENESIS = "c184a3c1c2ed34c42290b062409f968c3d5b5c3e623470cfeff8cf5b3723d73c"

#: For each header field, a value other than ENTRY's (None where the field may be absent).
CHANGED_FIELDS: dict[str, Any] = {
    "seq": 8,
    "type": "token.refreshed",
    "at": 1_700_000_001,
    "client_id": "agent-2",
    "user_id": "user-2",
    "request_id": "s" * 64,
    "grant_id": "grant-2",
    "body_sha256": body_digest('{"scope":"invoices.pay"}'),
}


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


def test_link_is_a_pinned_function_of_prev_and_entry() -> None:
    assert link(GENESIS, ENTRY) == ENTRY_LINK_AFTER_GENESIS
    assert link(GENESIS, dataclasses.replace(ENTRY)) == ENTRY_LINK_AFTER_GENESIS


def test_link_is_sha256_hex() -> None:
    value = link(GENESIS, ENTRY)
    assert len(value) == 64
    assert set(value) <= set("0123456789abcdef")


def test_link_hashes_the_format_name_prev_and_every_header_field_in_order() -> None:
    header = [FORMAT, GENESIS, 7, "token.issued", 1_700_000_000, "agent", "user-1"]
    header += ["r" * 64, "grant-1", body_digest(BODY)]
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True)
    assert link(GENESIS, ENTRY) == hashlib.sha256(text.encode("ascii")).hexdigest()


@pytest.mark.parametrize("field", sorted(CHANGED_FIELDS))
def test_changing_any_header_field_changes_the_link(field: str) -> None:
    changed = dataclasses.replace(ENTRY, **{field: CHANGED_FIELDS[field]})
    assert link(GENESIS, changed) != link(GENESIS, ENTRY)


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
    assert link(GENESIS, dataclasses.replace(ENTRY, seq="7")) != link(GENESIS, ENTRY)  # type: ignore[arg-type]


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


def test_each_link_depends_on_the_whole_history() -> None:
    first = dataclasses.replace(ENTRY, seq=1)
    second = dataclasses.replace(ENTRY, seq=2)
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
        ENTRY.seq = 8  # type: ignore[misc]

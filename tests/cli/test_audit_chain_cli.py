"""``grantline audit verify|checkpoint|export`` and ``db prune``'s body retention, run as an
operator would, against an instance whose database someone edited behind the server's back."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from joserfc import jws

from grantline.audit import event
from grantline.audit.chain import FORMAT, LANES, body_digest, heads_root, link
from grantline.audit.checkpoint import CHECKPOINT_TYP
from grantline.instance import Instance
from grantline.models import AuditEvent
from grantline.storage.audit import ChainedEvent
from grantline.storage.sql import SQLiteTransaction
from grantline.tokens.keys import parsed_key
from tests.audit.lanes import id_in_lane
from tests.cli.support import (
    assert_clean_failure,
    assert_usage_error,
    cli,
    init_instance,
    stored_keys,
    with_store,
)

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

#: ``grantline init``'s event has no ids, so it is in lane 2 (the lane of ""); the failed
#: sign-ins of the fixture name a user whose lane is 9.
INIT_LANE, LANE = 2, 9
USER = id_in_lane(LANE, "user")


def append(data_dir: Path, *events: AuditEvent) -> None:
    async def run(tx: SQLiteTransaction) -> None:
        for ev in events:
            await tx.append(ev)

    with_store(data_dir, run)


def tamper(data_dir: Path, sql: str, *args: object) -> None:
    """One statement on the database file, on a connection of its own, as an intruder would."""
    conn = sqlite3.connect(data_dir / "grantline.db", isolation_level=None)
    try:
        conn.execute(sql, args)
    finally:
        conn.close()


def heads(data_dir: Path) -> dict[int, tuple[int, str]]:
    return with_store(data_dir, lambda tx: tx.audit_heads())


def root(data_dir: Path) -> str:
    return heads_root([(lane, p, h) for lane, (p, h) in heads(data_dir).items()])


def chained(data_dir: Path) -> list[ChainedEvent]:
    """Every event, in seq order."""
    return with_store(data_dir, lambda tx: tx.chained_since(0, 10_000))


def lane_events(data_dir: Path, lane: int = LANE) -> list[ChainedEvent]:
    return with_store(data_dir, lambda tx: tx.chained_events(lane, 0, 10_000))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def verify(data_dir: Path, *checkpoints: Path) -> Result:
    options = [arg for path in checkpoints for arg in ("--checkpoint", str(path))]
    return cli("audit", "verify", "--data-dir", data_dir, *options)


def checkpoint_file(data_dir: Path, path: Path) -> dict[str, Any]:
    ok(cli("audit", "checkpoint", "-o", path, "--data-dir", data_dir))
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def b64(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(segment: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    value: dict[str, Any] = json.loads(raw)
    return value


@pytest.fixture
def data_dir(data_dir: Path) -> Path:
    """An instance whose log holds ``signing_key.created`` (seq 1, lane 2 position 1) and
    failed sign-ins 2..10 of USER (seq n at lane 9 position n - 1)."""
    append(
        data_dir,
        *(event("user.login_failed", T0 + i, user_id=USER, attempt=i) for i in range(2, 11)),
    )
    assert [(e.lane, e.position) for e in chained(data_dir)] == [(INIT_LANE, 1)] + [
        (LANE, n - 1) for n in range(2, 11)
    ]
    return data_dir


# -- verify --------------------------------------------------------------------------------


def test_verify_of_an_untouched_log_exits_0_with_a_summary(data_dir: Path) -> None:
    assert heads(data_dir)[LANE] == (9, lane_events(data_dir)[-1].chain_hash)
    result = ok(verify(data_dir))
    assert result.stdout == (
        f"ok: 10 events in 16 lanes, heads root {root(data_dir)}, 0 checkpoints matched\n"
    )
    assert result.stderr == ""


def test_verify_of_a_fresh_instance_passes(tmp_path: Path) -> None:
    fresh = init_instance(tmp_path / "fresh")
    result = ok(verify(fresh))
    assert (
        result.stdout
        == f"ok: 1 events in 16 lanes, heads root {root(fresh)}, 0 checkpoints matched\n"
    )


def linked_apart(seq: int, lane: int, position: int) -> str:
    """What verify prints for an event whose link no longer follows from its predecessor."""
    return (
        f"FAILED at event {seq} (lane {lane} position {position}): event {seq} does not link "
        f"to its predecessor in lane {lane}: its header, order or link was edited"
    )


@pytest.mark.parametrize(
    ("statement", "args", "expected"),
    [
        (
            "UPDATE audit_events SET data = ? WHERE seq = 4",
            ('{"attempt":40}',),
            "FAILED at event 4 (lane 9 position 3): "
            "the body of event 4 (user.login_failed) was changed",
        ),
        (
            "UPDATE audit_events SET type = ? WHERE seq = 6",
            ("user.login_succeeded",),
            linked_apart(6, LANE, 5),
        ),
        ("UPDATE audit_events SET at = at + 3600 WHERE seq = 3", (), linked_apart(3, LANE, 2)),
        (
            "UPDATE audit_events SET client_id = ? WHERE seq = 9",
            ("mallory",),
            linked_apart(9, LANE, 8),
        ),
        ("UPDATE audit_events SET user_id = NULL WHERE seq = 2", (), linked_apart(2, LANE, 1)),
        (
            "DELETE FROM audit_events WHERE seq = 5",
            (),
            "FAILED at event 6 (lane 9 position 5): event 6 does not follow lane 9 position 3: "
            "events between them were deleted, or rows were reordered",
        ),
        (
            "DELETE FROM audit_events WHERE seq > 8",
            (),
            "FAILED at lane 9 position 8: lane 9 ends at position 7 but its head names "
            "position 9: the newest events were deleted",
        ),
        (
            "UPDATE audit_head SET hash = ? WHERE lane = 9",
            ("f" * 64,),
            "FAILED at lane 9 position 9: lane 9 position 9 does not match the lane head: "
            "the newest event or the head was rewritten",
        ),
        # Moved into the lane verify reads first, after its one event.
        (
            "UPDATE audit_events SET lane = 2, position = 2 WHERE seq = 10",
            (),
            linked_apart(10, INIT_LANE, 2),
        ),
    ],
    ids=[
        "body",
        "type",
        "at",
        "client_id",
        "user_id",
        "deleted",
        "truncated",
        "head",
        "moved lane",
    ],
)
def test_verify_after_tampering_exits_1_and_names_the_event(
    data_dir: Path, statement: str, args: tuple[object, ...], expected: str
) -> None:
    tamper(data_dir, statement, *args)
    result = verify(data_dir)
    assert_clean_failure(result, expected, no_traceback=True)
    assert result.stderr == expected + "\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("position", linked_apart(8, LANE, 2)),
        (
            "seq",
            "FAILED at event 4 (lane 9 position 3): event 4 follows event 8 in lane 9 "
            "but not in seq order: rows were reordered",
        ),
    ],
)
def test_verify_of_rows_reordered_in_a_lane_names_the_first_moved_event(
    data_dir: Path, column: str, expected: str
) -> None:
    # Swap the events at lane 9 positions 2 and 7 (seqs 3 and 8) by one column.
    first, second = (2, 7) if column == "position" else (3, 8)
    for new, old in ((-1, first), (first, second), (second, -1)):
        # The column name is one of the two fixed names above.
        sql = f"UPDATE audit_events SET {column} = ? WHERE lane = 9 AND {column} = ?"  # noqa: S608
        tamper(data_dir, sql, new, old)
    result = verify(data_dir)
    assert_clean_failure(result, expected, no_traceback=True)
    assert result.stderr == expected + "\n"


def test_verify_after_a_body_is_pruned_by_hand_still_passes(data_dir: Path) -> None:
    """Dropping a body is what retention does; only the digest is needed to verify."""
    tamper(data_dir, "UPDATE audit_events SET data = NULL WHERE seq IN (2, 3)")
    result = ok(verify(data_dir))
    assert result.stdout == (
        f"ok: 10 events, 2 with pruned bodies in 16 lanes, heads root {root(data_dir)}, "
        "0 checkpoints matched\n"
    )


# -- checkpoint ------------------------------------------------------------------------------


def test_checkpoint_prints_every_signed_lane_head_as_json(data_dir: Path) -> None:
    before = int(time.time())
    result = ok(cli("audit", "checkpoint", "--data-dir", data_dir))
    document = json.loads(result.stdout)
    current = heads(data_dir)
    assert set(document) == {"issuer", "root", "at", "checkpoint"}
    assert document["root"] == root(data_dir)
    assert document["issuer"] == "http://127.0.0.1:8000"
    assert before <= document["at"] <= int(time.time())
    header_segment, payload_segment, _ = document["checkpoint"].split(".")
    header = unb64(header_segment)
    assert header["typ"] == CHECKPOINT_TYP
    assert header["kid"] == stored_keys(data_dir)[0].kid
    assert unb64(payload_segment) == {
        "iss": document["issuer"],
        "format": FORMAT,
        "root": document["root"],
        "heads": [[lane, *current[lane]] for lane in range(LANES)],
        "at": document["at"],
    }
    # The database keeps it too, and verify checks it from then on.
    kept = with_store(data_dir, lambda tx: tx.list_checkpoints())
    assert [(c.root, c.at, c.jws) for c in kept] == [
        (document["root"], document["at"], document["checkpoint"])
    ]
    assert ok(verify(data_dir)).stdout.endswith(", 1 checkpoints matched\n")


def test_checkpoint_output_writes_the_file_and_verify_reads_it(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"
    result = ok(cli("audit", "checkpoint", "--output", path, "--data-dir", data_dir))
    assert result.stdout == ""
    assert result.stderr == f"checkpoint of heads root {root(data_dir)} written to {path}\n"
    document = json.loads(path.read_text())
    assert document["root"] == root(data_dir)
    # The stored checkpoint and the file's.
    assert ok(verify(data_dir, path)).stdout.endswith(", 2 checkpoints matched\n")


def test_verify_reads_a_checkpoint_file_holding_the_bare_jws(
    data_dir: Path, tmp_path: Path
) -> None:
    document = checkpoint_file(data_dir, tmp_path / "checkpoint.json")
    bare = tmp_path / "checkpoint.jws"
    bare.write_text(document["checkpoint"] + "\n")
    ok(verify(data_dir, bare))


def test_verify_with_a_checkpoint_catches_truncation_with_the_lane_head_rewound(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"
    checkpoint_file(data_dir, path)
    seven = chained(data_dir)[6]
    assert (seven.event.seq, seven.lane, seven.position) == (7, LANE, 6)
    # Everything an intruder with the database alone can do to hide events 8 to 10.
    tamper(data_dir, "DELETE FROM audit_events WHERE seq > 7")
    tamper(
        data_dir, "UPDATE audit_head SET position = 6, hash = ? WHERE lane = 9", seven.chain_hash
    )
    tamper(data_dir, "DELETE FROM audit_checkpoints")

    assert ok(verify(data_dir)).stdout == (
        f"ok: 7 events in 16 lanes, heads root {root(data_dir)}, 0 checkpoints matched\n"
    )
    result = verify(data_dir, path)
    assert_clean_failure(
        result,
        "FAILED at lane 9 position 7: lane 9 ends at position 6 but a checkpoint signed "
        "position 9: events were deleted from the end",
        no_traceback=True,
    )


def test_verify_with_an_older_checkpoint_catches_a_recomputed_lane(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"
    checkpoint_file(data_dir, path)
    append(data_dir, event("user.login_failed", T0 + 11, user_id=USER, attempt=11))
    tamper(data_dir, "UPDATE audit_events SET data = ? WHERE seq = 5", '{"attempt":50}')
    events = lane_events(data_dir)
    prev = events[2].chain_hash
    for ev in events[3:]:
        assert ev.data_text is not None
        digest = body_digest(ev.data_text)
        prev = link(prev, dataclasses.replace(ev.entry(), body_sha256=digest))
        tamper(
            data_dir,
            "UPDATE audit_events SET body_sha256 = ?, chain_hash = ? WHERE seq = ?",
            digest,
            prev,
            ev.event.seq,
        )
    tamper(data_dir, "UPDATE audit_head SET hash = ? WHERE lane = 9", prev)
    tamper(data_dir, "DELETE FROM audit_checkpoints")

    assert ok(verify(data_dir)).stdout == (
        f"ok: 11 events in 16 lanes, heads root {root(data_dir)}, 0 checkpoints matched\n"
    )
    assert_clean_failure(
        verify(data_dir, path),
        "FAILED at event 10 (lane 9 position 9): event 10 differs from the one a checkpoint "
        "signed at lane 9 position 9",
        no_traceback=True,
    )


def test_a_checkpoint_signed_before_a_key_rotation_still_verifies(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"
    checkpoint_file(data_dir, path)
    ok(cli("keys", "rotate", "--data-dir", data_dir))
    ok(verify(data_dir, path))
    later = checkpoint_file(data_dir, tmp_path / "later.json")
    assert unb64(later["checkpoint"].split(".")[0])["kid"] == stored_keys(data_dir)[0].kid
    ok(verify(data_dir, path, tmp_path / "later.json"))


def sign_as_the_instance(data_dir: Path, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWS signed with the instance's own key: what only someone holding it could make."""
    key = stored_keys(data_dir)[0]
    secret = bytes.fromhex((data_dir / "secret.key").read_text().strip())
    return jws.serialize_compact(
        {"alg": key.alg, "kid": key.kid, **header},
        json.dumps(claims),
        parsed_key(key, secret),
        algorithms=[key.alg],
    )


def test_a_checkpoint_whose_heads_do_not_match_its_root_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    """Lane 9's head moved back one event under the same root, and signed again with the
    instance key: a checkpoint must say the heads its root commits to."""
    path = tmp_path / "checkpoint.json"
    document = checkpoint_file(data_dir, path)
    claims = unb64(document["checkpoint"].split(".")[1])
    nine = chained(data_dir)[8]
    claims["heads"][LANE] = [LANE, nine.position, nine.chain_hash]
    token = sign_as_the_instance(data_dir, {"typ": CHECKPOINT_TYP}, claims)
    path.write_text(json.dumps({**document, "checkpoint": token}))
    result = verify(data_dir, path)
    assert_clean_failure(
        result, f"{path}: the checkpoint's heads do not match its root", no_traceback=True
    )
    assert "ok:" not in result.output
    # The same claims with their root recomputed are a checkpoint, of a lane that since went
    # on: the refusal above is the root's doing.
    claims["root"] = heads_root([tuple(h) for h in claims["heads"]])
    path.write_text(sign_as_the_instance(data_dir, {"typ": CHECKPOINT_TYP}, claims))
    ok(verify(data_dir, path))


def _altered_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = unb64(payload)
    # Lane 9's head back one position, the root to match: all but the signature fits.
    claims["heads"][LANE][1] -= 1
    claims["root"] = heads_root([tuple(h) for h in claims["heads"]])
    return ".".join([header, b64(claims), signature])


def _altered_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    # A middle character: the last one may only carry padding bits.
    flipped = "A" if signature[10] != "A" else "B"
    return ".".join([header, payload, signature[:10] + flipped + signature[11:]])


def _alg_none(token: str) -> str:
    header, payload, _ = token.split(".")
    return ".".join([b64({**unb64(header), "alg": "none"}), payload, ""])


ALTERATIONS: dict[str, tuple[Callable[[str], str], str]] = {
    "payload": (_altered_payload, "the signature does not verify"),
    "signature": (_altered_signature, "the signature does not verify"),
    "alg none": (_alg_none, "alg 'none' is not allowed"),
    "no signature": (lambda t: t.rsplit(".", 1)[0], "not a compact JWS"),
    "not a JWS": (lambda t: "hello", "not a compact JWS"),
}


@pytest.mark.parametrize("how", sorted(ALTERATIONS))
def test_an_altered_checkpoint_is_refused_cleanly(data_dir: Path, tmp_path: Path, how: str) -> None:
    path = tmp_path / "checkpoint.json"
    document = checkpoint_file(data_dir, path)
    alter, reason = ALTERATIONS[how]
    path.write_text(json.dumps({**document, "checkpoint": alter(document["checkpoint"])}))
    result = verify(data_dir, path)
    assert_clean_failure(result, f"{path}: {reason}", no_traceback=True)
    assert "ok:" not in result.output


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"seq": 10}', "not a checkpoint file"),
        (b'{"checkpoint": ', "not a checkpoint file"),
        (b'{"checkpoint": {"seq": 10}}', "not a compact JWS"),
        (b"[1, 2]", "not a compact JWS"),
        (b"", "not a compact JWS"),
        (b"\xff\xfe\x00garbage", "not a checkpoint file"),
    ],
    ids=["no checkpoint member", "broken JSON", "object member", "array", "empty", "not UTF-8"],
)
def test_a_file_that_is_no_checkpoint_is_refused_cleanly(
    data_dir: Path, tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(content)
    assert_clean_failure(verify(data_dir, path), f"{path}: {reason}", no_traceback=True)


def test_a_server_signed_token_of_another_kind_is_no_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    """The server's key signs access tokens too; one of those is not a checkpoint."""
    listed = [[lane, *head] for lane, head in sorted(heads(data_dir).items())]
    claims = {
        "iss": "http://127.0.0.1:8000",
        "format": FORMAT,
        "root": root(data_dir),
        "heads": listed,
        "at": T0,
    }
    token = sign_as_the_instance(data_dir, {"typ": "at+jwt"}, claims)
    path = tmp_path / "token.jws"
    path.write_text(token)
    assert_clean_failure(
        verify(data_dir, path), f"{path}: not an audit checkpoint", no_traceback=True
    )


def test_a_checkpoint_signed_by_another_instance_is_refused(data_dir: Path, tmp_path: Path) -> None:
    other = init_instance(tmp_path / "other")
    path = tmp_path / "other.json"
    checkpoint_file(other, path)
    kid = stored_keys(other)[0].kid
    result = verify(data_dir, path)
    assert_clean_failure(result, f"{path}: no key with kid '{kid}'", no_traceback=True)


def test_checkpoint_without_an_active_key_fails_cleanly(data_dir: Path) -> None:
    tamper(data_dir, "UPDATE signing_keys SET retired_at = 1")
    result = cli("audit", "checkpoint", "--data-dir", data_dir)
    assert_clean_failure(
        result, "no active signing key: run `grantline keys rotate`", no_traceback=True
    )
    assert with_store(data_dir, lambda tx: tx.list_checkpoints()) == []


# -- export ----------------------------------------------------------------------------------


def exported(data_dir: Path, *options: str) -> list[dict[str, Any]]:
    result = ok(cli("audit", "export", "--data-dir", data_dir, *options))
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_export_emits_every_event_with_its_lane_place_digest_and_link(data_dir: Path) -> None:
    records = exported(data_dir)
    stored = chained(data_dir)
    assert [r["seq"] for r in records] == list(range(1, 11))
    for record, ev in zip(records, stored, strict=True):
        assert (record["lane"], record["position"]) == (ev.lane, ev.position)
        assert record["chain_hash"] == ev.chain_hash
        assert record["body_sha256"] == ev.body_sha256
        assert record["body_pruned"] is False
        assert record["type"] == ev.event.type
        assert record["at"] == ev.event.at
        assert record["data"] == ev.event.data
    assert records[3] | {"chain_hash": None, "body_sha256": None} == {
        "seq": 4,
        "type": "user.login_failed",
        "at": T0 + 4,
        "client_id": None,
        "user_id": USER,
        "request_id": None,
        "grant_id": None,
        "lane": LANE,
        "position": 3,
        "data": {"attempt": 4},
        "body_pruned": False,
        "chain_hash": None,
        "body_sha256": None,
    }
    assert ok(cli("audit", "export", "--format", "jsonl", "--data-dir", data_dir)).stdout == (
        ok(cli("audit", "export", "--data-dir", data_dir)).stdout
    )


@pytest.mark.parametrize(
    "since",
    [
        str(T0 + 6),
        "2023-11-14T22:13:26Z",
        "2023-11-14T22:13:26+00:00",
        "2023-11-14T23:13:26+01:00",
        "2023-11-14T22:13:26",  # no zone: UTC
    ],
)
def test_export_since_keeps_events_at_or_after_the_time(data_dir: Path, since: str) -> None:
    records = exported(data_dir, "--since", since)
    # seq 1 is `grantline init`'s, written at the real time, after every T0-based event.
    assert [r["seq"] for r in records] == [1, 6, 7, 8, 9, 10]
    assert all(r["at"] >= T0 + 6 for r in records)


def test_export_since_the_future_is_empty(data_dir: Path) -> None:
    assert exported(data_dir, "--since", str(int(time.time()) + 3600)) == []
    assert [r["seq"] for r in exported(data_dir, "--since", "0")] == list(range(1, 11))


@pytest.mark.parametrize("since", ["yesterday", "-5", "2023-13-01", "1.5e9", ""])
def test_export_refuses_a_bad_since(data_dir: Path, since: str) -> None:
    result = cli("audit", "export", "--since", since, "--data-dir", data_dir)
    assert_usage_error(result, "use seconds since the epoch or an ISO 8601 time")
    assert result.stdout == ""


def test_export_refuses_an_unknown_format(data_dir: Path) -> None:
    result = cli("audit", "export", "--format", "csv", "--data-dir", data_dir)
    assert_usage_error(result, "Invalid value for '--format'")


# -- db prune and retention --------------------------------------------------------------


def set_retention(data_dir: Path, days: int) -> None:
    """Set ``audit_retention_days`` in the instance's grantline.toml, as an operator would."""
    config = data_dir / "grantline.toml"
    text, count = re.subn(
        r"^audit_retention_days = \d+$",
        f"audit_retention_days = {days}",
        config.read_text(),
        flags=re.MULTILINE,
    )
    # A template without the line gets it on top: top-level keys precede the first [table].
    config.write_text(text if count else f"audit_retention_days = {days}\n{text}")
    assert Instance(data_dir).settings().audit_retention_days == days


def test_db_prune_drops_bodies_past_retention_and_verify_stays_green(data_dir: Path) -> None:
    set_retention(data_dir, 30)
    recent = int(time.time()) - 86400
    append(data_dir, event("user.login_failed", recent, attempt=11))
    before = chained(data_dir)

    result = ok(cli("db", "prune", "--data-dir", data_dir))
    assert "audit event bodies: 9 deleted" in result.stdout

    after = chained(data_dir)
    assert [e.event.seq for e in after[:11]] == list(range(1, 12))
    # Events 2..10 are from 2023; init's event (1) and the one from yesterday are kept.
    assert [e.data_text is None for e in after[:11]] == [False] + [True] * 9 + [False]
    assert [e.body_sha256 for e in after[:11]] == [e.body_sha256 for e in before]
    assert [e.chain_hash for e in after[:11]] == [e.chain_hash for e in before]
    [pruned] = [e.event for e in after if e.event.type == "audit.bodies_pruned"]
    assert pruned.data["bodies"] == 9
    assert T0 + 10 < pruned.data["before"] <= int(time.time()) - 30 * 86400
    assert pruned.at - pruned.data["before"] == 30 * 86400
    assert [e.event.type for e in after[11:]] == ["storage.pruned", "audit.bodies_pruned"]

    verified = ok(verify(data_dir))
    assert verified.stdout == (
        f"ok: {len(after)} events, 9 with pruned bodies in 16 lanes, heads root "
        f"{root(data_dir)}, 0 checkpoints matched\n"
    )
    records = exported(data_dir)
    assert [r["body_pruned"] for r in records[:11]] == [False] + [True] * 9 + [False]
    assert records[1]["data"] == {}

    # A second run has nothing left to drop and records no second pruning.
    again = ok(cli("db", "prune", "--data-dir", data_dir))
    assert "audit event bodies: 0 deleted" in again.stdout
    assert [e.event.type for e in chained(data_dir)].count("audit.bodies_pruned") == 1
    ok(verify(data_dir))


def test_db_prune_without_retention_keeps_every_body(data_dir: Path) -> None:
    result = ok(cli("db", "prune", "--data-dir", data_dir))
    assert "audit event bodies" not in result.stdout
    events = chained(data_dir)
    assert all(e.data_text is not None for e in events)
    assert "audit.bodies_pruned" not in [e.event.type for e in events]


def test_a_pruned_body_forged_back_in_is_caught(data_dir: Path) -> None:
    set_retention(data_dir, 30)
    ok(cli("db", "prune", "--data-dir", data_dir))
    tamper(data_dir, "UPDATE audit_events SET data = ? WHERE seq = 7", '{"attempt":700}')
    assert_clean_failure(
        verify(data_dir),
        "FAILED at event 7 (lane 9 position 6): the body of event 7 (user.login_failed) was "
        "changed",
        no_traceback=True,
    )

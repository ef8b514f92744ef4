"""``grantline audit tail``: the newest events, oldest first, as text or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from grantline.audit import event
from grantline.models import AuditEvent
from grantline.storage.sql import SQLiteTransaction
from tests.cli.support import assert_clean_failure, cli, with_store

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def append(data_dir: Path, *events: AuditEvent) -> None:
    async def run(tx: SQLiteTransaction) -> None:
        for ev in events:
            await tx.append(ev)

    with_store(data_dir, run)


def json_lines(result: Result) -> list[dict[str, object]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


@pytest.fixture
def data_dir(data_dir: Path) -> Path:
    """An instance whose trail holds ``signing_key.created`` (seq 1) and 29 more events."""
    append(data_dir, *(event("user.login_failed", T0 + i, attempt=i) for i in range(2, 31)))
    return data_dir


def test_tail_prints_the_newest_twenty_oldest_first(data_dir: Path) -> None:
    result = cli("audit", "tail", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 20
    seqs = [int(line.split()[0]) for line in lines]
    assert seqs == list(range(11, 31))


def test_tail_n_limits_to_the_newest_events(data_dir: Path) -> None:
    result = cli("audit", "tail", "-n", "3", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert [int(line.split()[0]) for line in result.output.splitlines()] == [28, 29, 30]
    long_form = cli("audit", "tail", "--lines", "1", "--data-dir", data_dir)
    assert [int(line.split()[0]) for line in long_form.output.splitlines()] == [30]


def test_tail_n_larger_than_the_trail_prints_everything(data_dir: Path) -> None:
    result = cli("audit", "tail", "-n", "1000", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(1, 31))
    assert "signing_key.created" in lines[0]


@pytest.mark.parametrize("lines", ["0", "-1", "many"])
def test_tail_refuses_a_bad_line_count(data_dir: Path, lines: str) -> None:
    result = cli("audit", "tail", "-n", lines, "--data-dir", data_dir)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output


def test_tail_json_prints_one_object_per_line(data_dir: Path) -> None:
    append(
        data_dir,
        event(
            "code.issued",
            T0 + 100,
            client_id="agent",
            user_id="user-1",
            request_id="r" * 64,
            grant_id="grant-1",
            scope="inbox.read",
        ),
    )
    records = json_lines(cli("audit", "tail", "--json", "-n", "2", "--data-dir", data_dir))
    assert len(records) == 2
    for record in records:
        assert {"type", "at", "client_id", "data", "seq"} <= set(record)
    older, newest = records
    assert older["seq"] == 30
    assert older["type"] == "user.login_failed"
    assert older["data"] == {"attempt": 30}
    assert older["client_id"] is None
    assert newest == {
        "type": "code.issued",
        "at": T0 + 100,
        "client_id": "agent",
        "user_id": "user-1",
        "request_id": "r" * 64,
        "grant_id": "grant-1",
        "data": {"scope": "inbox.read"},
        "seq": 31,
    }


def test_tail_json_is_oldest_first(data_dir: Path) -> None:
    records = json_lines(cli("audit", "tail", "--json", "-n", "100", "--data-dir", data_dir))
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(1, 31))
    assert records[0]["type"] == "signing_key.created"


def test_tail_text_names_the_event_its_time_and_who(data_dir: Path) -> None:
    append(
        data_dir,
        event(
            "consent.decided",
            T0,
            client_id="agent",
            user_id="user-1",
            request_id="0123456789abcdef" + "f" * 48,
            grant_id="grant-1",
            decision="approve",
        ),
    )
    result = cli("audit", "tail", "-n", "1", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    [line] = result.output.splitlines()
    assert line.split()[:3] == ["31", "2023-11-14T22:13:20Z", "consent.decided"]
    assert "client=agent" in line
    assert "user=user-1" in line
    assert "request=0123456789abcdef " in line  # only a prefix of the request digest
    assert "f" * 48 not in line
    assert "grant=grant-1" in line
    assert line.endswith('{"decision": "approve"}')


def test_tail_follows_cli_changes(data_dir: Path) -> None:
    added = cli(
        "users", "add", "alice", "--password-stdin", "--data-dir", data_dir, input="password-1\n"
    )
    assert added.exit_code == 0, added.output
    removed = cli("users", "remove", "alice", "--data-dir", data_dir)
    assert removed.exit_code == 0, removed.output
    records = json_lines(cli("audit", "tail", "--json", "-n", "2", "--data-dir", data_dir))
    assert [r["type"] for r in records] == ["user.added", "user.removed"]
    assert records[0]["data"] == {"username": "alice"}
    assert records[0]["user_id"] == records[1]["user_id"]


def test_tail_of_a_missing_instance_fails_cleanly(tmp_path: Path) -> None:
    result = cli("audit", "tail", "--data-dir", tmp_path / "missing")
    assert_clean_failure(result, "grantline init")

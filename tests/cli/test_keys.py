"""``grantline keys``: listing and rotating the keys that sign access tokens."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grantline.instance import Instance
from grantline.storage.sql import SQLiteTransaction
from grantline.tokens.keys import create_signing_key
from tests.cli.support import cli, events, stored_keys, with_store

LINE = re.compile(
    r"^(?P<kid>[A-Za-z0-9_-]{43})\t(?P<alg>ES256|Ed25519|RS256)\t"
    r"created (?P<created>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\t(?P<status>.+)$"
)


def listed(data_dir: Path, *extra: str) -> list[dict[str, str]]:
    result = cli("keys", "list", "--data-dir", data_dir, *extra)
    assert result.exit_code == 0, result.output
    rows = []
    for line in result.output.splitlines():
        match = LINE.match(line)
        assert match, f"unexpected line {line!r}"
        rows.append(match.groupdict())
    return rows


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_list_shows_the_initial_key_as_active(data_dir: Path) -> None:
    (key,) = stored_keys(data_dir)
    (row,) = listed(data_dir)
    assert row["kid"] == key.kid
    assert row["alg"] == "ES256"
    assert row["created"] == iso(key.created_at)
    assert row["status"] == "active"


def test_list_never_prints_private_key_material(data_dir: Path) -> None:
    (key,) = stored_keys(data_dir)
    result = cli("keys", "list", "--data-dir", data_dir, "--all")
    assert '"d"' not in result.output
    assert key.private_jwk not in result.output


def test_rotate_creates_an_active_key_and_keeps_the_old_one_for_verification(
    data_dir: Path,
) -> None:
    (old,) = stored_keys(data_dir)
    before = int(time.time())
    result = cli("keys", "rotate", "--data-dir", data_dir)
    after = int(time.time())
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"new signing key (\S+) \(ES256\)\n", result.output)
    assert match, result.output
    new_kid = match.group(1)
    assert "note:" not in result.output
    rows = listed(data_dir)
    assert [r["kid"] for r in rows] == [new_kid, old.kid]  # newest first
    assert rows[0]["status"] == "active"
    assert rows[1]["status"].startswith("verify-only until ")
    keys = {k.kid: k for k in stored_keys(data_dir)}
    retired_at = keys[old.kid].retired_at
    assert retired_at is not None and before + 600 <= retired_at <= after + 600
    assert rows[1]["status"] == f"verify-only until {iso(retired_at)}"
    (event,) = events(data_dir, "signing_key.rotated")
    assert event.data == {"kid": new_kid, "alg": "ES256"}


def test_rotate_to_another_alg_warns_that_the_config_still_names_the_old_one(
    data_dir: Path,
) -> None:
    result = cli("keys", "rotate", "--data-dir", data_dir, "--alg", "Ed25519")
    assert result.exit_code == 0, result.output
    assert re.match(r"new signing key \S+ \(Ed25519\)\n", result.output)
    assert (
        "note: access_token_signing_alg is ES256; set it to Ed25519 in grantline.toml "
        "for tokens to be signed with this key"
    ) in result.output
    rows = listed(data_dir)
    assert (rows[0]["alg"], rows[0]["status"]) == ("Ed25519", "active")
    assert rows[1]["alg"] == "ES256"


def test_rotate_follows_the_configured_alg(data_dir: Path) -> None:
    config = data_dir / "grantline.toml"
    text = config.read_text()
    assert 'access_token_signing_alg = "ES256"' in text
    config.write_text(text.replace('signing_alg = "ES256"', 'signing_alg = "Ed25519"'))
    result = cli("keys", "rotate", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert "(Ed25519)" in result.output
    assert "note:" not in result.output
    assert stored_keys(data_dir)[0].alg == "Ed25519"


@pytest.mark.parametrize("alg", ["HS256", "none", "es256"])
def test_rotate_refuses_other_algs(data_dir: Path, alg: str) -> None:
    result = cli("keys", "rotate", "--data-dir", data_dir, "--alg", alg)
    assert result.exit_code == 2
    assert "Invalid value for '--alg'" in result.output
    assert len(stored_keys(data_dir)) == 1
    assert not events(data_dir, "signing_key.rotated")


def test_list_hides_keys_no_longer_published_unless_asked(data_dir: Path) -> None:
    (old,) = stored_keys(data_dir)

    async def retire_in_the_past(tx: SQLiteTransaction) -> str:
        kid = await create_signing_key(
            tx, int(time.time()), "ES256", secret=Instance(data_dir).secret_key()
        )
        await tx.retire_signing_keys(kid, "ES256", published_until=1)
        return kid

    new_kid = with_store(data_dir, retire_in_the_past)
    assert [r["kid"] for r in listed(data_dir)] == [new_kid]
    rows = listed(data_dir, "--all")
    assert [(r["kid"], r["status"]) for r in rows] == [(new_kid, "active"), (old.kid, "retired")]


def test_keys_commands_need_an_instance(tmp_path: Path) -> None:
    for args in (["list"], ["rotate"]):
        result = cli("keys", *args, "--data-dir", tmp_path / "nothing")
        assert result.exit_code == 1
        assert "run `grantline init` first" in result.output

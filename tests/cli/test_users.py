"""``grantline users``: adding, listing and removing the people who sign in."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from grantline.models import Session
from grantline.passwords import verify_password
from grantline.storage.sql import SQLiteTransaction
from tests.cli.support import (
    assert_clean_failure,
    cli,
    database_bytes,
    events,
    get_user,
    list_users,
    with_store,
)

PASSWORD = "correct horse battery"


def add_user(data_dir: Path, username: str, password: str = PASSWORD) -> Result:
    args = ("users", "add", username, "--password-stdin", "--data-dir", data_dir)
    return cli(*args, input=password + "\n")


# -- add -----------------------------------------------------------------------------------


def test_add_stores_an_argon2id_hash_that_verifies(data_dir: Path) -> None:
    result = add_user(data_dir, "alice")
    assert result.exit_code == 0, result.output

    user = get_user(data_dir, "alice")
    assert user is not None
    assert f"added alice ({user.user_id})" in result.output
    assert len(user.user_id) == 32
    assert user.created_at > 0
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, PASSWORD)
    assert not verify_password(user.password_hash, PASSWORD + "!")
    assert not verify_password(user.password_hash, PASSWORD + "\n")

    stored = database_bytes(data_dir)
    assert user.password_hash.encode() in stored
    assert PASSWORD.encode() not in stored


def test_add_writes_a_user_added_event_without_the_password(data_dir: Path) -> None:
    assert add_user(data_dir, "alice").exit_code == 0
    user = get_user(data_dir, "alice")
    assert user is not None
    [added] = events(data_dir, "user.added")
    assert added.user_id == user.user_id
    assert added.data == {"username": "alice"}


def test_add_strips_a_windows_line_ending_from_stdin(data_dir: Path) -> None:
    result = cli(
        "users", "add", "alice", "--password-stdin", "--data-dir", data_dir, input=PASSWORD + "\r\n"
    )
    assert result.exit_code == 0, result.output
    user = get_user(data_dir, "alice")
    assert user is not None
    assert verify_password(user.password_hash, PASSWORD)


def test_add_prompts_for_the_password_twice_without_stdin_flag(data_dir: Path) -> None:
    result = cli("users", "add", "bob", "--data-dir", data_dir, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    user = get_user(data_dir, "bob")
    assert user is not None
    assert verify_password(user.password_hash, PASSWORD)


@pytest.mark.parametrize("password", ["", "short", "7chars!"])
def test_add_refuses_a_short_password(data_dir: Path, password: str) -> None:
    result = add_user(data_dir, "alice", password)
    assert_clean_failure(result, "at least 8 characters")
    assert get_user(data_dir, "alice") is None
    assert events(data_dir, "user.added") == []


def test_add_accepts_a_password_of_exactly_eight_characters(data_dir: Path) -> None:
    assert add_user(data_dir, "alice", "8chars!!").exit_code == 0
    user = get_user(data_dir, "alice")
    assert user is not None
    assert verify_password(user.password_hash, "8chars!!")


def test_add_refuses_a_taken_username(data_dir: Path) -> None:
    assert add_user(data_dir, "alice").exit_code == 0
    original = get_user(data_dir, "alice")

    result = add_user(data_dir, "alice", "another-password")

    assert_clean_failure(result, "user 'alice' already exists")
    assert list_users(data_dir) == [original]
    assert original is not None
    assert verify_password(original.password_hash, PASSWORD)
    assert len(events(data_dir, "user.added")) == 1


# -- list ----------------------------------------------------------------------------------


def test_list_shows_users_ordered_by_name(data_dir: Path) -> None:
    for name in ("carol", "alice", "bob"):
        assert add_user(data_dir, name).exit_code == 0
    result = cli("users", "list", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    expected = [f"{u.username}\t{u.user_id}" for u in list_users(data_dir)]
    assert result.output.splitlines() == expected
    assert [line.split("\t")[0] for line in expected] == ["alice", "bob", "carol"]
    assert "$argon2id$" not in result.output


def test_list_of_no_users_prints_nothing(data_dir: Path) -> None:
    result = cli("users", "list", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert result.output == ""


# -- remove --------------------------------------------------------------------------------


def test_remove_deletes_the_user_ends_their_sessions_and_writes_an_event(data_dir: Path) -> None:
    assert add_user(data_dir, "alice").exit_code == 0
    assert add_user(data_dir, "bob").exit_code == 0
    alice, bob = get_user(data_dir, "alice"), get_user(data_dir, "bob")
    assert alice is not None
    assert bob is not None

    async def sign_in(tx: SQLiteTransaction) -> None:
        await tx.add_session(Session("alice-session", alice.user_id, 0, 2**40))
        await tx.add_session(Session("bob-session", bob.user_id, 0, 2**40))

    with_store(data_dir, sign_in)

    result = cli("users", "remove", "alice", "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    assert "removed alice" in result.output
    assert get_user(data_dir, "alice") is None
    assert [u.username for u in list_users(data_dir)] == ["bob"]
    assert with_store(data_dir, lambda tx: tx.get_session("alice-session", 1)) is None
    assert with_store(data_dir, lambda tx: tx.get_session("bob-session", 1)) is not None
    [removed] = events(data_dir, "user.removed")
    assert removed.user_id == alice.user_id
    assert removed.data == {"username": "alice", "grants_revoked": 0}


def test_remove_an_unknown_user_fails_without_an_event(data_dir: Path) -> None:
    assert add_user(data_dir, "alice").exit_code == 0
    result = cli("users", "remove", "nobody", "--data-dir", data_dir)
    assert_clean_failure(result, "no user 'nobody'")
    assert [u.username for u in list_users(data_dir)] == ["alice"]
    assert events(data_dir, "user.removed") == []


def test_a_removed_username_can_be_added_again(data_dir: Path) -> None:
    assert add_user(data_dir, "alice").exit_code == 0
    first = get_user(data_dir, "alice")
    assert cli("users", "remove", "alice", "--data-dir", data_dir).exit_code == 0
    assert add_user(data_dir, "alice", "a-new-password").exit_code == 0
    second = get_user(data_dir, "alice")
    assert first is not None
    assert second is not None
    assert second.user_id != first.user_id
    assert verify_password(second.password_hash, "a-new-password")
    assert not verify_password(second.password_hash, PASSWORD)

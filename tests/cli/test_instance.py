"""``grantline init``, ``db upgrade``, ``serve`` and how every command treats a bad instance."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from alembic import command
from alembic.config import Config
from click.testing import CliRunner

import grantline.storage.schema as schema
from grantline.cli import main
from grantline.instance import Instance
from grantline.passwords import verify_password
from grantline.storage.schema import check_schema
from grantline.tokens.digest import Digester
from tests.cli.support import (
    assert_clean_failure,
    cli,
    get_client,
    get_user,
    list_clients,
    list_users,
    printed,
    stored_keys,
    with_store,
)


def signing_key_count(data_dir: Path) -> int:
    return len(stored_keys(data_dir))


def event_types(data_dir: Path) -> list[str]:
    return [e.type for e in with_store(data_dir, lambda tx: tx.tail(1000))]


def snapshot(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, stat.S_IMODE(st.st_mode)


def downgrade_to_base(data_dir: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    config.set_main_option("sqlalchemy.url", Instance(data_dir).database_url())
    command.downgrade(config, "base")


def replace_database_with_empty_file(data_dir: Path) -> None:
    db = data_dir / "grantline.db"
    for path in data_dir.glob("grantline.db*"):
        path.unlink()
    sqlite3.connect(db).close()
    assert db.exists()


# -- init ----------------------------------------------------------------------------------


def test_init_creates_config_secret_key_database_and_signing_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    result = cli("init", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output

    config_path = data_dir / "grantline.toml"
    key_path = data_dir / "secret.key"
    assert f"created {config_path}" in result.output
    assert f"created {key_path}" in result.output
    assert "created signing key" in result.output
    assert "nothing changed" not in result.output

    config = tomllib.loads(config_path.read_text())
    assert config["database_url"] == "sqlite:///grantline.db"
    assert config["dev_mode"] is False
    assert config["require_pushed_authorization_requests"] is True
    assert config["par_lifetime"] == 60
    assert "issuer" not in config
    assert set(config["scopes"]) == {"inbox.read", "invoices.pay", "deployments.write"}

    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", key_path.read_text())

    assert (data_dir / "grantline.db").is_file()
    check_schema(Instance(data_dir).database_url())
    assert signing_key_count(data_dir) == 1
    assert event_types(data_dir) == ["signing_key.created"]

    assert not (data_dir / "dev-credentials.json").exists()
    assert list_clients(data_dir) == []
    assert list_users(data_dir) == []


def test_init_creates_missing_parent_directories(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b" / "c"
    result = cli("init", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert (data_dir / "grantline.toml").is_file()


def test_init_twice_changes_nothing(data_dir: Path) -> None:
    files = [data_dir / "grantline.toml", data_dir / "secret.key", data_dir / "grantline.db"]
    before = {path: snapshot(path) for path in files}
    events_before = event_types(data_dir)
    kid_before = stored_keys(data_dir)[0].kid

    result = cli("init", "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    assert "nothing changed" in result.output
    assert "created" not in result.output
    assert {path: snapshot(path) for path in files} == before
    assert signing_key_count(data_dir) == 1
    assert stored_keys(data_dir)[0].kid == kid_before
    assert event_types(data_dir) == events_before


def test_init_with_an_issuer_writes_it_to_the_config(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    result = cli("init", "--data-dir", data_dir, "--issuer", "https://as.example.com")
    assert result.exit_code == 0, result.output
    config = tomllib.loads((data_dir / "grantline.toml").read_text())
    assert config["issuer"] == "https://as.example.com"
    assert Instance(data_dir).settings().issuer == "https://as.example.com"


def test_init_with_an_invalid_issuer_fails_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    result = cli("init", "--data-dir", data_dir, "--issuer", "http://as.example.com")
    assert_clean_failure(result, "issuer", exit_code=None, no_traceback=True)
    assert_clean_failure(
        cli("users", "list", "--data-dir", data_dir), exit_code=None, no_traceback=True
    )


def test_init_dev_creates_a_working_client_and_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    result = cli("init", "--dev", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output

    out = result.output
    assert "DEVELOPMENT" in out
    assert "locally only" in out
    assert "created development client dev-agent and user dev-user" in out
    assert printed(out, "client_id", padded=True) == "dev-agent"
    assert printed(out, "username", padded=True) == "dev-user"
    assert printed(out, "redirect_uri", padded=True) == "http://127.0.0.1:8000/dev/callback"
    secret = printed(out, "client_secret", padded=True)
    password = printed(out, "password", padded=True)

    settings = Instance(data_dir).settings()
    client = get_client(data_dir, "dev-agent")
    assert client is not None
    assert client.auth_method == "client_secret_basic"
    assert client.redirect_uris == ("http://127.0.0.1:8000/dev/callback",)
    assert "development" in client.name
    assert client.secret_digest is not None
    digester = Digester(settings.secret_key)
    assert digester.matches("client_secret", secret, client.secret_digest)
    assert not digester.matches("client_secret", secret + "x", client.secret_digest)

    user = get_user(data_dir, "dev-user")
    assert user is not None
    assert verify_password(user.password_hash, password)
    assert not verify_password(user.password_hash, password + "x")

    creds_path = data_dir / "dev-credentials.json"
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    creds = json.loads(creds_path.read_text())
    assert "DEVELOPMENT ONLY" in creds["warning"]
    assert creds["client_id"] == "dev-agent"
    assert creds["client_secret"] == secret
    assert creds["username"] == "dev-user"
    assert creds["password"] == password
    assert str(creds_path) in out

    assert tomllib.loads((data_dir / "grantline.toml").read_text())["dev_mode"] is True
    assert settings.dev_mode is True
    events = with_store(data_dir, lambda tx: tx.tail(10))
    assert [e.type for e in events] == ["signing_key.created", "client.registered", "user.added"]
    assert events[1].client_id == "dev-agent"
    assert events[2].user_id == user.user_id
    assert all(secret not in json.dumps(e.data) for e in events)
    assert all(password not in json.dumps(e.data) for e in events)


def test_init_dev_twice_keeps_and_reprints_the_same_credentials(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = cli("init", "--dev", "--data-dir", data_dir)
    assert first.exit_code == 0, first.output
    creds_before = snapshot(data_dir / "dev-credentials.json")

    second = cli("init", "--dev", "--data-dir", data_dir)

    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output
    assert printed(second.output, "client_secret", padded=True) == printed(
        first.output, "client_secret", padded=True
    )
    assert printed(second.output, "password", padded=True) == printed(
        first.output, "password", padded=True
    )
    assert snapshot(data_dir / "dev-credentials.json") == creds_before
    assert [c.client_id for c in list_clients(data_dir)] == ["dev-agent"]
    assert [u.username for u in list_users(data_dir)] == ["dev-user"]
    assert signing_key_count(data_dir) == 1


def test_init_dev_after_the_dev_client_was_removed_prints_a_working_password(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "var"
    assert cli("init", "--dev", "--data-dir", data_dir).exit_code == 0
    assert cli("clients", "remove", "dev-agent", "--data-dir", data_dir).exit_code == 0

    result = cli("init", "--dev", "--data-dir", data_dir)

    assert result.exit_code == 0, result.output
    user = get_user(data_dir, "dev-user")
    assert user is not None
    assert verify_password(user.password_hash, printed(result.output, "password", padded=True))


def test_init_without_dev_on_a_dev_instance_prints_no_credentials(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    assert cli("init", "--dev", "--data-dir", data_dir).exit_code == 0
    result = cli("init", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert "client_secret" not in result.output
    assert "password" not in result.output


# -- a missing or outdated instance -------------------------------------------------------

COMMANDS: list[tuple[str, ...]] = [
    ("clients", "list"),
    ("clients", "show", "agent"),
    ("clients", "add", "--name", "Agent", "--redirect-uri", "https://agent.example/cb"),
    ("clients", "remove", "agent"),
    ("clients", "rotate-secret", "agent"),
    ("clients", "update", "agent", "--name", "New"),
    ("users", "add", "bob", "--password-stdin"),
    ("users", "list"),
    ("users", "remove", "bob"),
    ("audit", "tail"),
    ("serve",),
]


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` must fail before it starts anything."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("uvicorn.run was called")

    monkeypatch.setattr(uvicorn, "run", refuse)


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_commands_on_a_missing_instance_fail_with_a_clear_message(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    data_dir = tmp_path / "nothing-here"
    result = cli(*args, "--data-dir", data_dir, input="long-enough-password\n")
    assert_clean_failure(
        result, "no Grantline instance", "grantline init", exit_code=None, no_traceback=True
    )
    assert not data_dir.exists()


def test_db_upgrade_on_a_missing_instance_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = cli("db", "upgrade", "--data-dir", tmp_path / "nothing-here")
    assert_clean_failure(result, "grantline init", exit_code=None, no_traceback=True)


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_commands_on_an_empty_database_ask_for_an_upgrade(
    data_dir: Path, args: tuple[str, ...]
) -> None:
    replace_database_with_empty_file(data_dir)
    result = cli(*args, "--data-dir", data_dir, input="long-enough-password\n")
    assert_clean_failure(result, "grantline init", "db upgrade", exit_code=None, no_traceback=True)
    assert "schema revision none" in result.output


@pytest.mark.usefixtures("no_server")
def test_a_downgraded_database_is_refused_until_db_upgrade(data_dir: Path) -> None:
    downgrade_to_base(data_dir)
    for args in (("users", "list"), ("clients", "list"), ("serve",)):
        result = cli(*args, "--data-dir", data_dir)
        assert_clean_failure(
            result, "grantline init", "db upgrade", exit_code=None, no_traceback=True
        )

    upgraded = cli("db", "upgrade", "--data-dir", data_dir)
    assert upgraded.exit_code == 0, upgraded.output
    assert "up to date" in upgraded.output
    check_schema(Instance(data_dir).database_url())

    listed = cli("users", "list", "--data-dir", data_dir)
    assert listed.exit_code == 0, listed.output


def test_init_repairs_an_empty_database(data_dir: Path) -> None:
    replace_database_with_empty_file(data_dir)
    result = cli("init", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert "created signing key" in result.output
    check_schema(Instance(data_dir).database_url())
    assert cli("users", "list", "--data-dir", data_dir).exit_code == 0


def test_db_upgrade_on_a_current_database_reports_up_to_date(data_dir: Path) -> None:
    db = data_dir / "grantline.db"
    before = db.read_bytes()
    result = cli("db", "upgrade", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert "is up to date" in result.output
    assert db.read_bytes() == before


def test_db_upgrade_names_the_database_file(data_dir: Path) -> None:
    result = cli("db", "upgrade", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    db = (data_dir / "grantline.db").resolve()
    assert f"database at {db} is up to date" in result.output


def test_a_missing_secret_key_fails_with_a_clear_message(data_dir: Path) -> None:
    (data_dir / "secret.key").unlink()
    result = cli("users", "list", "--data-dir", data_dir)
    assert_clean_failure(result, "secret.key", exit_code=None, no_traceback=True)


def test_the_data_dir_can_come_from_the_environment(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GRANTLINE_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["audit", "tail"])
    assert result.exit_code == 0, result.output
    assert "signing_key.created" in result.output


# -- serve ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_server")
def test_serve_on_a_missing_instance_exits_non_zero_without_starting(tmp_path: Path) -> None:
    result = cli("serve", "--data-dir", tmp_path / "missing", "--port", "8123")
    assert_clean_failure(result, "grantline init", exit_code=None, no_traceback=True)
    assert "serving" not in result.output


def test_serve_hands_the_instance_to_uvicorn_without_an_access_log(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serve() exports these for the worker processes; register them so they are restored.
    monkeypatch.setenv("GRANTLINE_DATA_DIR", "placeholder")
    monkeypatch.setenv("GRANTLINE_SERVE_URL", "placeholder")
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))

    result = cli("serve", "--data-dir", data_dir, "--port", "8123", "--workers", "2")

    assert result.exit_code == 0, result.output
    assert f"serving {data_dir.resolve()} on http://127.0.0.1:8123" in result.output
    [(args, kwargs)] = calls
    assert args == ("grantline.app:app_from_environment",)
    assert kwargs["factory"] is True
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["port"] == 8123
    assert kwargs["workers"] == 2
    assert kwargs["access_log"] is False
    assert os.environ["GRANTLINE_DATA_DIR"] == str(data_dir.resolve())
    assert os.environ["GRANTLINE_SERVE_URL"] == "http://127.0.0.1:8123"


def test_database_file_is_private(data_dir: Path) -> None:
    assert cli("init", "--data-dir", data_dir).exit_code == 0
    assert (data_dir / "grantline.db").stat().st_mode & 0o777 == 0o600


def test_check_schema_does_not_create_a_missing_database(tmp_path: Path) -> None:
    from grantline.storage.schema import SchemaOutdated, check_schema

    missing = tmp_path / "missing.db"
    with pytest.raises(SchemaOutdated, match="grantline init"):
        check_schema(f"sqlite:///{missing}")
    assert not missing.exists()


def test_db_prune_reports_what_it_deleted_and_audits_it(data_dir: Path) -> None:
    result = cli("db", "prune", "--data-dir", data_dir, "--keep-for", "0")
    assert result.exit_code == 0, result.output
    assert "authorization_requests: 0 deleted" in result.output
    assert "replay_cache: 0 deleted" in result.output
    pruned = [e for e in with_store(data_dir, lambda tx: tx.tail(5)) if e.type == "storage.pruned"]
    assert len(pruned) == 1
    assert pruned[0].data["keep_for"] == 0

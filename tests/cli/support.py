"""Helpers shared by the ``grantline`` command-line tests: run a command in-process, read the
instance's store behind it, and check how a command failed.

The fixtures that go with them (a fresh instance, a clean environment) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from click.testing import CliRunner, Result

from grantline.cli import main
from grantline.instance import Instance
from grantline.models import AuditEvent, Client, SigningKey, User
from grantline.storage.schema import open_store
from grantline.storage.sql import SQLiteTransaction
from grantline.tokens.digest import Digester

T = TypeVar("T")


# -- running a command ---------------------------------------------------------------------


def cli(*args: str | Path, input: str | None = None) -> Result:
    """``grantline ARGS`` in this process, with ``input`` on its stdin."""
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def init_instance(path: Path) -> Path:
    """``grantline init --data-dir PATH``, which must succeed; returns ``path``."""
    result = cli("init", "--data-dir", path)
    assert result.exit_code == 0, result.output
    return path


def printed(output: str, label: str, *, padded: bool = False) -> str:
    """The value of the ``label: value`` line of ``output``; with ``padded``, the line may also
    have white space before the label and after the value."""
    pad = r"\s*" if padded else ""
    match = re.search(rf"^{pad}{label}:\s+(\S+){pad}$", output, re.MULTILINE)
    assert match, f"no {label} in {output!r}"
    return match.group(1)


# -- how a command failed --------------------------------------------------------------------


def _assert_output_has(result: Result, fragments: tuple[str, ...]) -> None:
    for fragment in fragments:
        assert fragment in result.output, result.output


def assert_clean_failure(
    result: Result, *fragments: str, exit_code: int | None = 1, no_traceback: bool = False
) -> None:
    """A failure with a message, not an uncaught exception: the exit status is ``exit_code``
    (any non-zero one when it is None), the output holds every fragment and, with
    ``no_traceback``, no traceback."""
    if exit_code is None:
        assert result.exit_code != 0, result.output
    else:
        assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if no_traceback:
        assert "Traceback" not in result.output
    _assert_output_has(result, fragments)


def assert_usage_error(result: Result, *fragments: str) -> None:
    """Click refused the command line: exit status 2 through ``SystemExit``, with every
    fragment in the output."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    _assert_output_has(result, fragments)


# -- the instance's store ------------------------------------------------------------------


def with_store(data_dir: Path, work: Callable[[SQLiteTransaction], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on the store of the instance at ``data_dir``."""

    async def run() -> T:
        store = open_store(Instance(data_dir).settings().database_url)
        try:
            async with store.transaction() as tx:
                return await work(tx)
        finally:
            await store.close()

    return asyncio.run(run())


def events(data_dir: Path, type_: str | None = None) -> list[AuditEvent]:
    """The audit trail (its newest 1000 events), oldest first; only ``type_`` when given."""
    found = with_store(data_dir, lambda tx: tx.tail(1000))
    return [e for e in found if type_ is None or e.type == type_]


def get_client(data_dir: Path, client_id: str) -> Client | None:
    return with_store(data_dir, lambda tx: tx.get_client(client_id))


def list_clients(data_dir: Path) -> list[Client]:
    return with_store(data_dir, lambda tx: tx.list_clients())


def get_user(data_dir: Path, username: str) -> User | None:
    return with_store(data_dir, lambda tx: tx.get_user_by_username(username))


def list_users(data_dir: Path) -> list[User]:
    return with_store(data_dir, lambda tx: tx.list_users())


def stored_keys(data_dir: Path) -> list[SigningKey]:
    return with_store(data_dir, lambda tx: tx.list_signing_keys())


# -- the instance's files ------------------------------------------------------------------


def digester(data_dir: Path) -> Digester:
    """The digester keyed with the instance's secret key."""
    return Digester(Instance(data_dir).secret_key())


def database_bytes(data_dir: Path) -> bytes:
    """The database file and any WAL beside it: everything the store has written."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("grantline.db*")))

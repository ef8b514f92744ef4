"""``grantline users``: the people who sign in and approve requests."""

from __future__ import annotations

import secrets
import sys

import click

from grantline.audit import event
from grantline.cli._common import data_dir_option, load, run_with_store
from grantline.context import system_clock
from grantline.models import User
from grantline.passwords import hash_password
from grantline.storage import Store

__all__ = ["users"]

MIN_PASSWORD_LENGTH = 8


@click.group()
def users() -> None:
    """Manage users."""


@users.command("add")
@data_dir_option
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add(data_dir: str | None, username: str, password_stdin: bool) -> None:
    """Add a user; the password is stored as an argon2id hash."""
    _, settings = load(data_dir)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    now = system_clock()
    user = User(secrets.token_hex(16), username, hash_password(password), now)

    async def work(store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_user(user)
            await tx.append(event("user.added", now, user_id=user.user_id, username=username))

    try:
        run_with_store(settings, work)
    except KeyError:
        raise click.ClickException(f"user {username!r} already exists") from None
    click.echo(f"added {username} ({user.user_id})")


@users.command("list")
@data_dir_option
def list_(data_dir: str | None) -> None:
    """List users."""
    _, settings = load(data_dir)

    async def work(store: Store) -> list[User]:
        async with store.reader() as tx:
            return await tx.list_users()

    for user in run_with_store(settings, work):
        click.echo(f"{user.username}\t{user.user_id}")


@users.command("remove")
@data_dir_option
@click.argument("username")
def remove(data_dir: str | None, username: str) -> None:
    """Remove a user and end their sessions."""
    _, settings = load(data_dir)
    now = system_clock()

    async def work(store: Store) -> int | None:
        async with store.transaction() as tx:
            removed = await tx.remove_user(username, now)
            if removed is None:
                return None
            user, revoked = removed
            await tx.append(
                event(
                    "user.removed",
                    now,
                    user_id=user.user_id,
                    username=username,
                    grants_revoked=revoked,
                )
            )
            return revoked

    revoked = run_with_store(settings, work)
    if revoked is None:
        raise click.ClickException(f"no user {username!r}")
    click.echo(f"removed {username}; revoked {revoked} grant(s) and their tokens")

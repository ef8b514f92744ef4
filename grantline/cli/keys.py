"""``grantline keys``: the keys that sign access tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from grantline.audit import event
from grantline.cli._common import data_dir_option, load, run_with_store
from grantline.context import system_clock
from grantline.models import SigningKey
from grantline.settings import SIGNING_ALGS
from grantline.storage import Store
from grantline.tokens.keys import rotate_signing_key

__all__ = ["keys"]


def _when(ts: int | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group()
def keys() -> None:
    """Manage signing keys."""


@keys.command("list")
@data_dir_option
@click.option("--all", "show_all", is_flag=True, help="Include keys no longer published.")
def list_(data_dir: str | None, show_all: bool) -> None:
    """List signing keys, newest first: the active one signs, the others only verify."""
    _, settings = load(data_dir)
    now = system_clock()

    async def work(store: Store) -> list[SigningKey]:
        async with store.reader() as tx:
            return await tx.list_signing_keys(None if show_all else now)

    for key in run_with_store(settings, work):
        if key.active:
            status = "active"
        elif key.retired_at is not None and key.retired_at > now:
            status = f"verify-only until {_when(key.retired_at)}"
        else:
            status = "retired"
        click.echo(f"{key.kid}\t{key.alg}\tcreated {_when(key.created_at)}\t{status}")


@keys.command("rotate")
@data_dir_option
@click.option(
    "--alg",
    type=click.Choice(SIGNING_ALGS),
    default=None,
    help="Algorithm of the new key (default: access_token_signing_alg).",
)
def rotate(data_dir: str | None, alg: str | None) -> None:
    """Create a new signing key. Older keys stay in the JWKS until every token they signed has
    expired (access_token_lifetime)."""
    _, settings = load(data_dir)
    alg = alg or settings.access_token_signing_alg
    now = system_clock()

    async def work(store: Store) -> str:
        async with store.transaction() as tx:
            kid = await rotate_signing_key(
                tx, now, alg, settings.access_token_lifetime, secret=settings.secret_key
            )
            await tx.append(event("signing_key.rotated", now, kid=kid, alg=alg))
            return kid

    kid = run_with_store(settings, work)
    click.echo(f"new signing key {kid} ({alg})")
    if alg != settings.access_token_signing_alg:
        click.echo(
            f"note: access_token_signing_alg is {settings.access_token_signing_alg}; "
            f"set it to {alg} in grantline.toml for tokens to be signed with this key"
        )

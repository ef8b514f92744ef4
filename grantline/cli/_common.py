"""Helpers shared by the commands: locating the instance and running store work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from grantline.instance import Instance, resolve_data_dir
from grantline.settings import Settings
from grantline.storage import Store
from grantline.storage.schema import SchemaOutdated, check_schema, open_store

__all__ = ["data_dir_option", "load", "read_settings", "run_with_store"]

T = TypeVar("T")

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Instance directory (default: $GRANTLINE_DATA_DIR, else ./var).",
)


def read_settings(instance: Instance, issuer: str | None = None) -> Settings:
    """The instance's settings, or a clear error for a missing or invalid configuration."""
    try:
        return instance.settings(issuer=issuer)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    except (ValueError, TypeError, OSError) as exc:
        raise click.ClickException(f"invalid configuration in {instance.data_dir}: {exc}") from None


def load(data_dir: str | None) -> tuple[Instance, Settings]:
    """The instance and its settings, refusing a missing instance or an outdated schema."""
    instance = Instance(resolve_data_dir(data_dir))
    settings = read_settings(instance)
    try:
        check_schema(settings.database_url)
    except SchemaOutdated as exc:
        raise click.ClickException(str(exc)) from None
    return instance, settings


def run_with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        store = open_store(settings.database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())

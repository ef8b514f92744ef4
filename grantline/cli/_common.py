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

__all__ = ["data_dir_option", "load", "run_with_store"]

T = TypeVar("T")

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Instance directory (default: $GRANTLINE_DATA_DIR, else ./var).",
)


def load(data_dir: str | None) -> tuple[Instance, Settings]:
    instance = Instance(resolve_data_dir(data_dir))
    try:
        settings = instance.settings()
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
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

"""The ``grantline`` command line."""

from __future__ import annotations

import click

from grantline.cli.audit import audit
from grantline.cli.clients import clients
from grantline.cli.instance import db, init, serve
from grantline.cli.keys import keys
from grantline.cli.users import users

__all__ = ["main"]


@click.group()
@click.version_option(package_name="grantline")
def main() -> None:
    """Grantline: an OAuth 2.0 authorization server built around pushed authorization requests."""


main.add_command(init)
main.add_command(serve)
main.add_command(db)
main.add_command(clients)
main.add_command(users)
main.add_command(audit)
main.add_command(keys)

"""``grantline init``, ``grantline serve`` and ``grantline db``."""

from __future__ import annotations

import json
import os
import secrets
import tempfile

import click

from grantline.audit import event
from grantline.cli._common import data_dir_option, load, read_settings, run_with_store
from grantline.context import system_clock
from grantline.instance import Instance, resolve_data_dir
from grantline.models import Client, User
from grantline.passwords import hash_password
from grantline.settings import Settings
from grantline.storage import Store
from grantline.storage.schema import is_postgres, sqlite_path, upgrade
from grantline.tokens.digest import Digester, new_secret
from grantline.tokens.keys import create_signing_key

__all__ = ["db", "init", "serve"]

DEV_CLIENT_ID = "dev-agent"
DEV_USERNAME = "dev-user"
DEFAULT_URL = "http://127.0.0.1:8000"


@click.command()
@data_dir_option
@click.option("--issuer", default=None, help="Issuer URL (default: the URL `serve` listens on).")
@click.option(
    "--dev",
    is_flag=True,
    help="Also create a development-only example client and user, and print their credentials.",
)
def init(data_dir: str | None, issuer: str | None, dev: bool) -> None:
    """Create the config file, database and signing key. Running it again changes nothing."""
    instance = Instance(resolve_data_dir(data_dir))
    if issuer is not None:
        _check_issuer(issuer)
    created = instance.write_initial_files(issuer=issuer, dev_mode=dev)
    settings = read_settings(instance, issuer or DEFAULT_URL)
    if not is_postgres(settings.database_url):
        create_private_file(sqlite_path(settings.database_url))
    upgrade(settings.database_url)
    created += run_with_store(settings, lambda store: _seed(store, settings, instance, dev))
    for item in created:
        click.echo(f"created {item}")
    if not created:
        click.echo(f"instance in {instance.data_dir} is already initialized; nothing changed")
    if dev and instance.dev_credentials_path.exists():
        _print_dev_credentials(instance, settings)


def _check_issuer(issuer: str) -> None:
    try:
        Settings(issuer=issuer, database_url="sqlite://", secret_key=b"0" * 32)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--issuer") from None


def create_private_file(path: str) -> None:
    """Create the SQLite file readable by its owner only: it holds signing keys and password
    hashes. An existing file keeps its mode."""
    if path and path != ":memory:":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


async def _seed(store: Store, settings: Settings, instance: Instance, dev: bool) -> list[str]:
    created: list[str] = []
    now = system_clock()
    async with store.transaction() as tx:
        if not await tx.list_signing_keys():
            alg = settings.access_token_signing_alg
            kid = await create_signing_key(tx, now, alg, secret=settings.secret_key)
            await tx.append(event("signing_key.created", now, kid=kid, alg=alg))
            created.append(f"signing key {kid}")
        if dev and await tx.get_client(DEV_CLIENT_ID) is None:
            secret = new_secret()
            password = secrets.token_urlsafe(12)
            client = Client(
                client_id=DEV_CLIENT_ID,
                name="Example agent (development only)",
                auth_method="client_secret_basic",
                redirect_uris=(settings.endpoint("/dev/callback"),),
                secret_digest=Digester(settings.secret_key).digest("client_secret", secret),
                created_at=now,
                updated_at=now,
            )
            await tx.add_client(client)
            await tx.append(
                event("client.registered", now, client_id=DEV_CLIENT_ID, name=client.name, dev=True)
            )
            existing = await tx.get_user_by_username(DEV_USERNAME)
            if existing is None:
                user = User(secrets.token_hex(16), DEV_USERNAME, hash_password(password), now)
                await tx.add_user(user)
                await tx.append(event("user.added", now, user_id=user.user_id, dev=True))
            else:
                # The printed password must work: give the existing dev user the new one.
                await tx.set_password(existing.user_id, hash_password(password))
                await tx.append(event("user.password_changed", now, user_id=existing.user_id))
            _write_dev_credentials(instance, secret, password)
            created.append(f"development client {DEV_CLIENT_ID} and user {DEV_USERNAME}")
    return created


def _write_dev_credentials(instance: Instance, secret: str, password: str) -> None:
    """Development only: kept in a 0600 file so `make run` can print them again."""
    data = {
        "warning": "DEVELOPMENT ONLY - never use these credentials in production",
        "client_id": DEV_CLIENT_ID,
        "client_secret": secret,
        "username": DEV_USERNAME,
        "password": password,
    }
    path = instance.dev_credentials_path
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)


def _print_dev_credentials(instance: Instance, settings: Settings) -> None:
    creds = json.loads(instance.dev_credentials_path.read_text())
    click.echo(
        "\n"
        "  DEVELOPMENT INSTANCE - these credentials are for trying Grantline locally only\n"
        f"    client_id:     {creds['client_id']}\n"
        f"    client_secret: {creds['client_secret']}\n"
        f"    redirect_uri:  {settings.endpoint('/dev/callback')}\n"
        f"    username:      {creds['username']}\n"
        f"    password:      {creds['password']}\n"
        f"  (also in {instance.dev_credentials_path})\n"
    )


@click.command()
@data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(data_dir: str | None, host: str, port: int, workers: int) -> None:
    """Serve the authorization server."""
    import uvicorn

    data_path = resolve_data_dir(data_dir).resolve()
    # Fail here, with a clear message, on a missing or outdated instance.
    _, settings = load(str(data_path))
    url_host = f"[{host}]" if ":" in host else host
    # Worker processes write their metrics here and /metrics sums them; set before uvicorn
    # (and so prometheus_client) is imported by any of them.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="grantline-metrics-")
    os.environ["GRANTLINE_DATA_DIR"] = str(data_path)
    os.environ["GRANTLINE_SERVE_URL"] = f"http://{url_host}:{port}"
    click.echo(f"Grantline serving {data_path} on http://{url_host}:{port}")
    from grantline.web.limits import server_options
    from grantline.web.observability import log_config

    uvicorn.run(
        "grantline.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The access log would write query strings (request_uri, code) to disk.
        access_log=False,
        log_level="info",
        log_config=log_config(),
        # Timeouts, head limits and trusted proxies (grantline.web.limits).
        **server_options(settings),
    )


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@data_dir_option
def db_upgrade(data_dir: str | None) -> None:
    """Apply pending schema migrations."""
    instance = Instance(resolve_data_dir(data_dir))
    settings = read_settings(instance)
    upgrade(settings.database_url)
    where = settings.database_url.split("@")[-1] if is_postgres(settings.database_url) else None
    click.echo(f"database at {where or sqlite_path(settings.database_url)} is up to date")


@db.command("prune")
@data_dir_option
@click.option(
    "--keep-for",
    type=click.IntRange(0),
    default=86400,
    show_default=True,
    help="Seconds to keep a row after it expired.",
)
def db_prune(data_dir: str | None, keep_for: int) -> None:
    """Delete expired requests, interactions, sessions, codes, tokens and replay-cache entries.

    A rotated refresh token keeps its original expiry, so reuse is still detected until then;
    grants and audit events are never deleted. With ``audit_retention_days`` set, the bodies of
    older audit events are dropped; their digests keep the chain verifiable.
    """
    _, settings = load(data_dir)
    now = system_clock()

    async def work(store: Store) -> dict[str, int]:
        async with store.transaction() as tx:
            deleted = await tx.prune_expired(now, keep_for=keep_for)
            await tx.append(event("storage.pruned", now, deleted=dict(deleted), keep_for=keep_for))
            if settings.audit_retention_days:
                before = now - settings.audit_retention_days * 86400
                dropped = await tx.prune_event_bodies(before)
                deleted["audit event bodies"] = dropped
                if dropped:
                    await tx.append(
                        event("audit.bodies_pruned", now, before=before, bodies=dropped)
                    )
            return deleted

    deleted = run_with_store(settings, work)
    for table, count in deleted.items():
        click.echo(f"{table}: {count} deleted")

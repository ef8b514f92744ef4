"""``grantline clients``: register clients and change their policy.

Policy changes are written to the database and read on every request, so they take effect on
the next request, including for request_uris pushed before the change (RFC 9126 7.4).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

import click

from grantline.audit import event
from grantline.cli._common import data_dir_option, load, run_with_store
from grantline.client_keys import parse_public_jwks
from grantline.context import system_clock
from grantline.errors import OAuthError
from grantline.models import AUTH_METHODS, AuthMethod, Client
from grantline.protocol.redirect_uri import validate_registered_redirect_uri
from grantline.protocol.resource import check_resource_uri
from grantline.settings import PAR_LIFETIME_CAP, Settings, is_loopback_host
from grantline.storage import Store
from grantline.tokens.digest import Digester, new_secret

__all__ = ["clients"]


def _describe(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "redirect_uris": list(client.redirect_uris),
        "scope": " ".join(client.scopes) or None,
        "require_pushed_authorization_requests": client.require_par,
        "par_lifetime": client.par_lifetime,
        "authorization_details_types": list(client.authorization_details_types),
        "resources": list(client.resources),
        "can_introspect": client.can_introspect,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "require_signed_request_object": client.require_signed_request_object,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
    }


def _check_redirect_uris(uris: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(validate_registered_redirect_uri(u) for u in uris)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--redirect-uri") from None


def _check_scopes(settings: Settings, scope: str | None) -> tuple[str, ...]:
    if scope is None:
        return ()
    names = tuple(s for s in scope.split(" ") if s)
    unknown = [s for s in names if s not in settings.scopes]
    if unknown:
        raise click.BadParameter(
            f"unknown scope {unknown[0]!r}; known: {' '.join(sorted(settings.scopes))}",
            param_hint="--scope",
        )
    return names


def _check_detail_types(settings: Settings, types: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [t for t in types if t not in settings.authorization_details_types]
    if unknown:
        known = " ".join(sorted(settings.authorization_details_types)) or "(none configured)"
        raise click.BadParameter(
            f"unknown type {unknown[0]!r}; configured: {known}",
            param_hint="--authorization-details-type",
        )
    return tuple(dict.fromkeys(types))


def _check_resources(resources: tuple[str, ...]) -> tuple[str, ...]:
    for uri in resources:
        try:
            check_resource_uri(uri)
        except OAuthError as exc:
            raise click.BadParameter(exc.description, param_hint="--resource") from None
    return tuple(dict.fromkeys(resources))


def _read_jwks(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
        parse_public_jwks(document)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--jwks") from None
    return dict(document)


def _check_jwks_uri(uri: str | None) -> str | None:
    if uri is None:
        return None
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and is_loopback_host(parts.hostname or "")
    if not parts.hostname or not (parts.scheme == "https" or loopback) or parts.fragment:
        raise click.BadParameter(
            "must be an https URL (http only on loopback)", param_hint="--jwks-uri"
        )
    return uri


def _check_keys(auth_method: str, jwks: dict[str, Any] | None, jwks_uri: str | None) -> None:
    if jwks is not None and jwks_uri is not None:
        raise click.UsageError("use --jwks or --jwks-uri, not both")
    if auth_method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise click.UsageError("private_key_jwt needs the client's keys: --jwks FILE or --jwks-uri")


_jwks = click.option(
    "--jwks", "jwks_file", type=click.Path(dir_okay=False), help="File with the client's JWKS."
)
_jwks_uri = click.option("--jwks-uri", default=None, help="URL of the client's JWKS.")
_signed_requests = click.option(
    "--require-signed-request-object/--no-require-signed-request-object",
    default=None,
    help="Only accept pushed requests inside a signed request object (RFC 9101).",
)
_dpop_bound = click.option(
    "--dpop-bound-access-tokens/--no-dpop-bound-access-tokens",
    default=None,
    help="Require a DPoP proof for every token this client gets (RFC 9449).",
)

_detail_types = click.option(
    "--authorization-details-type",
    "detail_types",
    multiple=True,
    help="An RFC 9396 type this client may request (repeatable; default: every type).",
)
_resources = click.option(
    "--resource",
    "resources",
    multiple=True,
    help="A resource (RFC 8707) this client may request tokens for (repeatable).",
)

_par_lifetime = click.option(
    "--par-lifetime",
    type=click.IntRange(1, PAR_LIFETIME_CAP),
    default=None,
    help=f"Seconds this client's request_uris live (at most {PAR_LIFETIME_CAP}).",
)
_require_par = click.option(
    "--require-par/--no-require-par",
    default=None,
    help="Require pushed authorization requests for this client (default: follow the server).",
)


@click.group()
def clients() -> None:
    """Manage registered clients."""


@clients.command("add")
@data_dir_option
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option(
    "--auth-method",
    type=click.Choice(AUTH_METHODS),
    default="client_secret_basic",
    show_default=True,
)
@_require_par
@_par_lifetime
@click.option("--scope", default=None, help='Scopes the client may request, e.g. "a b".')
@_detail_types
@_resources
@click.option(
    "--can-introspect", is_flag=True, help="A resource server: may introspect every token."
)
@_jwks
@_jwks_uri
@_signed_requests
@_dpop_bound
@click.option("--client-id", default=None, help="Choose the client_id (default: random).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add(
    data_dir: str | None,
    name: str,
    redirect_uris: tuple[str, ...],
    auth_method: AuthMethod,
    require_par: bool | None,
    par_lifetime: int | None,
    scope: str | None,
    detail_types: tuple[str, ...],
    resources: tuple[str, ...],
    can_introspect: bool,
    jwks_file: str | None,
    jwks_uri: str | None,
    require_signed_request_object: bool | None,
    dpop_bound_access_tokens: bool | None,
    client_id: str | None,
    as_json: bool,
) -> None:
    """Register a client; its secret is printed once and stored only as a keyed digest."""
    _, settings = load(data_dir)
    if can_introspect and auth_method == "none":
        raise click.UsageError("a public client (--auth-method none) cannot be --can-introspect")
    jwks = _read_jwks(jwks_file)
    jwks_uri = _check_jwks_uri(jwks_uri)
    _check_keys(auth_method, jwks, jwks_uri)
    now = system_clock()
    has_secret = auth_method in ("client_secret_basic", "client_secret_post")
    secret = new_secret() if has_secret else None
    client = Client(
        client_id=client_id or secrets.token_urlsafe(16),
        name=name,
        auth_method=auth_method,
        redirect_uris=_check_redirect_uris(redirect_uris),
        scopes=_check_scopes(settings, scope),
        require_par=require_par,
        par_lifetime=par_lifetime,
        authorization_details_types=_check_detail_types(settings, detail_types),
        resources=_check_resources(resources),
        can_introspect=can_introspect,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_signed_request_object=bool(require_signed_request_object),
        dpop_bound_access_tokens=bool(dpop_bound_access_tokens),
        secret_digest=(
            None
            if secret is None
            else Digester(settings.secret_key).digest("client_secret", secret)
        ),
        created_at=now,
        updated_at=now,
    )

    async def work(store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_client(client)
            await tx.append(event("client.registered", now, **_describe(client)))

    try:
        run_with_store(settings, work)
    except KeyError:
        raise click.ClickException(f"client_id {client.client_id!r} is already taken") from None
    result = {**_describe(client), "client_secret": secret}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"client_id:     {client.client_id}")
    if secret is not None:
        click.echo(f"client_secret: {secret}")
        click.echo("The secret is shown only now; Grantline stores only its digest.")


@clients.command("list")
@data_dir_option
@click.option("--json", "as_json", is_flag=True)
def list_(data_dir: str | None, as_json: bool) -> None:
    """List registered clients."""
    _, settings = load(data_dir)

    async def work(store: Store) -> list[Client]:
        async with store.reader() as tx:
            return await tx.list_clients()

    found = run_with_store(settings, work)
    if as_json:
        click.echo(json.dumps([_describe(c) for c in found], indent=2))
        return
    for c in found:
        click.echo(f"{c.client_id}\t{c.auth_method}\t{c.name}")


def _get(settings: Settings, client_id: str) -> Client:
    async def work(store: Store) -> Client | None:
        async with store.reader() as tx:
            return await tx.get_client(client_id)

    client = run_with_store(settings, work)
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    return client


@clients.command("show")
@data_dir_option
@click.argument("client_id")
def show(data_dir: str | None, client_id: str) -> None:
    """Show one client's registration as JSON (never its secret)."""
    _, settings = load(data_dir)
    click.echo(json.dumps(_describe(_get(settings, client_id)), indent=2))


@clients.command("remove")
@data_dir_option
@click.argument("client_id")
def remove(data_dir: str | None, client_id: str) -> None:
    """Remove a client and revoke every grant and token it holds."""
    _, settings = load(data_dir)
    now = system_clock()

    async def work(store: Store) -> int | None:
        async with store.transaction() as tx:
            revoked = await tx.remove_client(client_id, now)
            if revoked is not None:
                await tx.append(
                    event("client.removed", now, client_id=client_id, grants_revoked=revoked)
                )
            return revoked

    revoked = run_with_store(settings, work)
    if revoked is None:
        raise click.ClickException(f"no client {client_id!r}")
    click.echo(f"removed {client_id}; revoked {revoked} grant(s) and their tokens")


@clients.command("rotate-secret")
@data_dir_option
@click.argument("client_id")
def rotate_secret(data_dir: str | None, client_id: str) -> None:
    """Replace a confidential client's secret; the old one stops working at once."""
    _, settings = load(data_dir)
    client = _get(settings, client_id)
    if client.auth_method not in ("client_secret_basic", "client_secret_post"):
        raise click.ClickException(
            f"{client_id} is a public client or uses private_key_jwt: it has no secret"
        )
    secret = new_secret()
    now = system_clock()
    updated = dataclasses.replace(
        client,
        secret_digest=Digester(settings.secret_key).digest("client_secret", secret),
        updated_at=now,
    )

    async def work(store: Store) -> None:
        async with store.transaction() as tx:
            await tx.update_client(updated)
            await tx.append(event("client.secret_rotated", now, client_id=client_id))

    run_with_store(settings, work)
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only now; Grantline stores only its digest.")


@clients.command("update")
@data_dir_option
@click.argument("client_id")
@click.option("--name", default=None)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="Replace the registered redirect URIs (repeatable).",
)
@_require_par
@click.option("--follow-server-par", is_flag=True, help="Forget the client's own PAR requirement.")
@_par_lifetime
@click.option("--scope", default=None, help="Replace the scopes the client may request.")
@_detail_types
@_resources
@click.option("--can-introspect/--no-can-introspect", default=None)
@_jwks
@_jwks_uri
@_signed_requests
@_dpop_bound
def update(
    data_dir: str | None,
    client_id: str,
    name: str | None,
    redirect_uris: tuple[str, ...],
    require_par: bool | None,
    follow_server_par: bool,
    par_lifetime: int | None,
    scope: str | None,
    detail_types: tuple[str, ...],
    resources: tuple[str, ...],
    can_introspect: bool | None,
    jwks_file: str | None,
    jwks_uri: str | None,
    require_signed_request_object: bool | None,
    dpop_bound_access_tokens: bool | None,
) -> None:
    """Change a client's policy; it applies from the very next request (RFC 9126 7.4)."""
    _, settings = load(data_dir)
    client = _get(settings, client_id)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if redirect_uris:
        changes["redirect_uris"] = _check_redirect_uris(redirect_uris)
    if require_par is not None and follow_server_par:
        raise click.UsageError("--follow-server-par contradicts --require-par/--no-require-par")
    if require_par is not None:
        changes["require_par"] = require_par
    if follow_server_par:
        changes["require_par"] = None
    if par_lifetime is not None:
        changes["par_lifetime"] = par_lifetime
    if scope is not None:
        changes["scopes"] = _check_scopes(settings, scope)
    if detail_types:
        changes["authorization_details_types"] = _check_detail_types(settings, detail_types)
    if resources:
        changes["resources"] = _check_resources(resources)
    if can_introspect is not None:
        if can_introspect and client.auth_method == "none":
            raise click.UsageError("a public client cannot be --can-introspect")
        changes["can_introspect"] = can_introspect
    if jwks_file is not None or jwks_uri is not None:
        jwks = _read_jwks(jwks_file)
        checked_uri = _check_jwks_uri(jwks_uri)
        _check_keys(client.auth_method, jwks, checked_uri)
        changes["jwks"], changes["jwks_uri"] = jwks, checked_uri
    if require_signed_request_object is not None:
        changes["require_signed_request_object"] = require_signed_request_object
    if dpop_bound_access_tokens is not None:
        changes["dpop_bound_access_tokens"] = dpop_bound_access_tokens
    if not changes:
        raise click.UsageError("nothing to change")
    now = system_clock()
    updated = dataclasses.replace(client, **changes, updated_at=now)

    async def work(store: Store) -> None:
        async with store.transaction() as tx:
            await tx.update_client(updated)
            await tx.append(
                event(
                    "client.updated",
                    now,
                    client_id=client_id,
                    before=_describe(client),
                    after=_describe(updated),
                )
            )

    run_with_store(settings, work)
    click.echo(json.dumps(_describe(updated), indent=2))

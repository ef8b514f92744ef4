"""``grantline clients``: registration, policy changes, secrets and their audit events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grantline.models import AuthMethod, Client
from grantline.storage.sql import SQLiteTransaction
from tests.cli.support import (
    assert_clean_failure,
    cli,
    database_bytes,
    digester,
    events,
    get_client,
    list_clients,
    printed,
    with_store,
)

SEEDED_SECRET = "seeded-client-secret-0123456789-abcdefghij"
REDIRECT_URI = "https://agent.example/callback"


def seed_client(
    data_dir: Path,
    client_id: str = "agent",
    auth_method: AuthMethod = "client_secret_basic",
    **policy: Any,
) -> Client:
    """Register a client straight through the store, independently of ``clients add``."""
    digest = None
    if auth_method != "none":
        digest = digester(data_dir).digest("client_secret", SEEDED_SECRET)
    client = Client(
        client_id=client_id,
        name=policy.pop("name", "Invoice Agent"),
        auth_method=auth_method,
        redirect_uris=policy.pop("redirect_uris", (REDIRECT_URI,)),
        secret_digest=digest,
        created_at=1,
        updated_at=1,
        **policy,
    )

    async def add(tx: SQLiteTransaction) -> None:
        await tx.add_client(client)

    with_store(data_dir, add)
    return client


# -- add -----------------------------------------------------------------------------------


def test_add_with_every_option(data_dir: Path) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Invoice Agent",
        "--redirect-uri",
        "https://agent.example/callback",
        "--redirect-uri",
        "http://127.0.0.1:9000/callback",
        "--auth-method",
        "client_secret_post",
        "--require-par",
        "--par-lifetime",
        "30",
        "--scope",
        "inbox.read invoices.pay",
        "--client-id",
        "invoice-agent",
        "--json",
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    secret = shown.pop("client_secret")
    assert isinstance(secret, str)
    assert len(secret) >= 32
    assert shown == {
        "client_id": "invoice-agent",
        "name": "Invoice Agent",
        "token_endpoint_auth_method": "client_secret_post",
        "redirect_uris": ["https://agent.example/callback", "http://127.0.0.1:9000/callback"],
        "scope": "inbox.read invoices.pay",
        "require_pushed_authorization_requests": True,
        "par_lifetime": 30,
        "authorization_details_types": [],
        "resources": [],
        "can_introspect": False,
        "jwks": None,
        "jwks_uri": None,
        "require_signed_request_object": False,
        "dpop_bound_access_tokens": False,
    }

    client = get_client(data_dir, "invoice-agent")
    assert client is not None
    assert client.name == "Invoice Agent"
    assert client.auth_method == "client_secret_post"
    assert client.redirect_uris == (
        "https://agent.example/callback",
        "http://127.0.0.1:9000/callback",
    )
    assert client.scopes == ("inbox.read", "invoices.pay")
    assert client.require_par is True
    assert client.par_lifetime == 30
    assert client.created_at > 0
    assert client.secret_digest is not None
    assert digester(data_dir).matches("client_secret", secret, client.secret_digest)


@pytest.mark.parametrize(
    ("flag", "stored"), [("--require-par", True), ("--no-require-par", False), (None, None)]
)
def test_add_records_the_par_requirement(data_dir: Path, flag: str | None, stored: bool) -> None:
    extra = [flag] if flag else []
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--client-id",
        "agent",
        *extra,
    )
    assert result.exit_code == 0, result.output
    client = get_client(data_dir, "agent")
    assert client is not None
    assert client.require_par is stored
    assert client.par_lifetime is None
    assert client.scopes == ()


def test_add_shows_the_secret_once_and_stores_only_its_digest(data_dir: Path) -> None:
    result = cli(
        "clients", "add", "--data-dir", data_dir, "--name", "Agent", "--redirect-uri", REDIRECT_URI
    )
    assert result.exit_code == 0, result.output
    client_id = printed(result.output, "client_id")
    secret = printed(result.output, "client_secret")
    assert "shown only now" in result.output
    assert len(client_id) >= 16  # random by default

    client = get_client(data_dir, client_id)
    assert client is not None
    assert client.auth_method == "client_secret_basic"
    assert client.secret_digest is not None
    assert client.secret_digest != secret
    assert digester(data_dir).matches("client_secret", secret, client.secret_digest)

    stored = database_bytes(data_dir)
    assert client.secret_digest.encode() in stored  # the file really holds the registration
    assert secret.encode() not in stored

    for args in (("clients", "show", client_id), ("clients", "list", "--json")):
        shown = cli(*args, "--data-dir", data_dir)
        assert shown.exit_code == 0, shown.output
        assert secret not in shown.output
        assert client.secret_digest not in shown.output
    trail = cli("audit", "tail", "--json", "--data-dir", data_dir)
    assert secret not in trail.output


def test_a_public_client_gets_no_secret(data_dir: Path) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Native App",
        "--redirect-uri",
        "com.example.app:/callback",
        "--auth-method",
        "none",
        "--client-id",
        "native",
        "--json",
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["client_secret"] is None
    assert shown["token_endpoint_auth_method"] == "none"
    client = get_client(data_dir, "native")
    assert client is not None
    assert client.auth_method == "none"
    assert client.secret_digest is None

    plain = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Native App 2",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--auth-method",
        "none",
    )
    assert plain.exit_code == 0, plain.output
    assert "client_secret" not in plain.output


def test_add_writes_a_client_registered_event(data_dir: Path) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--client-id",
        "agent",
        "--scope",
        "inbox.read",
    )
    assert result.exit_code == 0, result.output
    [registered] = events(data_dir, "client.registered")
    assert registered.client_id == "agent"
    assert registered.data["name"] == "Agent"
    assert registered.data["redirect_uris"] == [REDIRECT_URI]
    assert registered.data["scope"] == "inbox.read"
    assert not any("secret" in key for key in registered.data)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/callback",
        "http://localhost/callback",
        "http://[::1]:8080/callback",
        "com.example.app:/callback",
    ],
)
def test_add_accepts_loopback_http_and_native_schemes(data_dir: Path, uri: str) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        uri,
        "--client-id",
        "agent",
    )
    assert result.exit_code == 0, result.output
    client = get_client(data_dir, "agent")
    assert client is not None
    assert client.redirect_uris == (uri,)


def test_add_accepts_the_par_lifetime_cap(data_dir: Path) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--client-id",
        "agent",
        "--par-lifetime",
        "600",
    )
    assert result.exit_code == 0, result.output
    client = get_client(data_dir, "agent")
    assert client is not None
    assert client.par_lifetime == 600


def test_add_refuses_a_taken_client_id(data_dir: Path) -> None:
    original = seed_client(data_dir)
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Impostor",
        "--redirect-uri",
        "https://impostor.example/cb",
        "--client-id",
        "agent",
    )
    assert_clean_failure(result, "client_id 'agent' is already taken")
    assert "client_secret" not in result.output
    assert get_client(data_dir, "agent") == original
    assert events(data_dir, "client.registered") == []


@pytest.mark.parametrize(
    "uri",
    [
        "http://agent.example/callback",
        "http://localhost.evil.example/callback",
        "https://agent.example/callback#fragment",
        "https://agent.example/callback#",
        "/callback",
        "callback",
        "javascript:alert(1)",
        "data:text/html,hello",
    ],
)
def test_add_refuses_an_invalid_redirect_uri(data_dir: Path, uri: str) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--redirect-uri",
        uri,
        "--client-id",
        "agent",
    )
    assert_clean_failure(result, "--redirect-uri", exit_code=2)
    assert list_clients(data_dir) == []
    assert events(data_dir, "client.registered") == []


def test_add_refuses_an_unknown_scope(data_dir: Path) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--scope",
        "inbox.read admin",
    )
    assert_clean_failure(result, "unknown scope 'admin'", "inbox.read", exit_code=2)
    assert list_clients(data_dir) == []


@pytest.mark.parametrize("lifetime", ["601", "3600", "0", "-1"])
def test_add_refuses_a_par_lifetime_out_of_range(data_dir: Path, lifetime: str) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--par-lifetime",
        lifetime,
    )
    assert_clean_failure(result, "--par-lifetime", exit_code=2)
    assert list_clients(data_dir) == []


def test_add_refuses_an_unknown_auth_method(data_dir: Path) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--auth-method",
        "tls_client_auth",
    )
    assert_clean_failure(result, "--auth-method", exit_code=2)
    assert list_clients(data_dir) == []


@pytest.mark.parametrize(
    "args",
    [("--redirect-uri", REDIRECT_URI), ("--name", "Agent")],
    ids=["no-name", "no-redirect-uri"],
)
def test_add_requires_a_name_and_a_redirect_uri(data_dir: Path, args: tuple[str, ...]) -> None:
    result = cli("clients", "add", "--data-dir", data_dir, *args)
    assert_clean_failure(result, "Missing option", exit_code=2)
    assert list_clients(data_dir) == []


# -- list and show -------------------------------------------------------------------------


def test_list_shows_every_client_ordered_by_id(data_dir: Path) -> None:
    seed_client(data_dir, "b-native", "none", name="Native App")
    seed_client(data_dir, "a-agent", name="Invoice Agent")
    result = cli("clients", "list", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "a-agent\tclient_secret_basic\tInvoice Agent",
        "b-native\tnone\tNative App",
    ]


def test_list_json_describes_clients_without_secrets(data_dir: Path) -> None:
    client = seed_client(data_dir, scopes=("inbox.read",), require_par=True, par_lifetime=45)
    result = cli("clients", "list", "--json", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {
            "client_id": "agent",
            "name": "Invoice Agent",
            "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": [REDIRECT_URI],
            "scope": "inbox.read",
            "require_pushed_authorization_requests": True,
            "par_lifetime": 45,
            "authorization_details_types": [],
            "resources": [],
            "can_introspect": False,
            "jwks": None,
            "jwks_uri": None,
            "require_signed_request_object": False,
            "dpop_bound_access_tokens": False,
        }
    ]
    assert client.secret_digest is not None
    assert client.secret_digest not in result.output
    assert SEEDED_SECRET not in result.output


def test_list_of_no_clients_prints_nothing(data_dir: Path) -> None:
    result = cli("clients", "list", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert result.output == ""
    as_json = cli("clients", "list", "--json", "--data-dir", data_dir)
    assert json.loads(as_json.output) == []


def test_show_prints_the_registration_and_never_a_secret(data_dir: Path) -> None:
    client = seed_client(data_dir, redirect_uris=(REDIRECT_URI, "http://127.0.0.1/cb"))
    result = cli("clients", "show", "agent", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown == {
        "client_id": "agent",
        "name": "Invoice Agent",
        "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": [REDIRECT_URI, "http://127.0.0.1/cb"],
        "scope": None,
        "require_pushed_authorization_requests": None,
        "par_lifetime": None,
        "authorization_details_types": [],
        "resources": [],
        "can_introspect": False,
        "jwks": None,
        "jwks_uri": None,
        "require_signed_request_object": False,
        "dpop_bound_access_tokens": False,
    }
    assert not any("secret" in key for key in shown)
    assert client.secret_digest is not None
    assert client.secret_digest not in result.output
    assert SEEDED_SECRET not in result.output


def test_show_an_unknown_client_fails(data_dir: Path) -> None:
    result = cli("clients", "show", "nobody", "--data-dir", data_dir)
    assert_clean_failure(result, "no client 'nobody'")


# -- remove --------------------------------------------------------------------------------


def test_remove_deletes_the_client_and_writes_an_event(data_dir: Path) -> None:
    seed_client(data_dir)
    seed_client(data_dir, "other")
    result = cli("clients", "remove", "agent", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert "removed agent" in result.output
    assert get_client(data_dir, "agent") is None
    assert [c.client_id for c in list_clients(data_dir)] == ["other"]
    [removed] = events(data_dir, "client.removed")
    assert removed.client_id == "agent"


def test_remove_an_unknown_client_fails_without_an_event(data_dir: Path) -> None:
    seed_client(data_dir)
    result = cli("clients", "remove", "nobody", "--data-dir", data_dir)
    assert_clean_failure(result, "no client 'nobody'")
    assert [c.client_id for c in list_clients(data_dir)] == ["agent"]
    assert events(data_dir, "client.removed") == []


# -- rotate-secret -------------------------------------------------------------------------


def test_rotate_secret_replaces_the_secret(data_dir: Path) -> None:
    before = seed_client(data_dir, scopes=("inbox.read",), require_par=False, par_lifetime=30)
    result = cli("clients", "rotate-secret", "agent", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    new_secret = printed(result.output, "client_secret")
    assert new_secret != SEEDED_SECRET
    assert "shown only now" in result.output

    after = get_client(data_dir, "agent")
    assert after is not None
    assert after.secret_digest is not None
    d = digester(data_dir)
    assert d.matches("client_secret", new_secret, after.secret_digest)
    assert not d.matches("client_secret", SEEDED_SECRET, after.secret_digest)
    assert after.updated_at > before.updated_at
    assert (after.name, after.redirect_uris, after.scopes, after.require_par) == (
        before.name,
        before.redirect_uris,
        before.scopes,
        before.require_par,
    )
    assert (after.auth_method, after.par_lifetime, after.created_at) == (
        before.auth_method,
        before.par_lifetime,
        before.created_at,
    )
    assert new_secret.encode() not in database_bytes(data_dir)

    [rotated] = events(data_dir, "client.secret_rotated")
    assert rotated.client_id == "agent"
    assert new_secret not in json.dumps(rotated.data)


def test_rotating_twice_invalidates_the_first_rotated_secret(data_dir: Path) -> None:
    seed_client(data_dir)
    rotate = ("clients", "rotate-secret", "agent", "--data-dir", data_dir)
    first = printed(cli(*rotate).output, "client_secret")
    second = printed(cli(*rotate).output, "client_secret")
    assert first != second
    client = get_client(data_dir, "agent")
    assert client is not None
    assert client.secret_digest is not None
    assert not digester(data_dir).matches("client_secret", first, client.secret_digest)
    assert digester(data_dir).matches("client_secret", second, client.secret_digest)
    assert len(events(data_dir, "client.secret_rotated")) == 2


def test_rotate_secret_is_refused_for_a_public_client(data_dir: Path) -> None:
    seed_client(data_dir, "native", "none")
    result = cli("clients", "rotate-secret", "native", "--data-dir", data_dir)
    assert_clean_failure(result, "public client")
    assert "client_secret:" not in result.output
    client = get_client(data_dir, "native")
    assert client is not None
    assert client.secret_digest is None
    assert events(data_dir, "client.secret_rotated") == []


def test_rotate_secret_of_an_unknown_client_fails(data_dir: Path) -> None:
    result = cli("clients", "rotate-secret", "nobody", "--data-dir", data_dir)
    assert_clean_failure(result, "no client 'nobody'")
    assert events(data_dir, "client.secret_rotated") == []


# -- update --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field", "value", "described"),
    [
        (("--name", "Renamed Agent"), "name", "Renamed Agent", ("name", "Renamed Agent")),
        (
            ("--redirect-uri", "https://a.example/1", "--redirect-uri", "http://localhost/2"),
            "redirect_uris",
            ("https://a.example/1", "http://localhost/2"),
            ("redirect_uris", ["https://a.example/1", "http://localhost/2"]),
        ),
        (("--require-par",), "require_par", True, ("require_pushed_authorization_requests", True)),
        (
            ("--no-require-par",),
            "require_par",
            False,
            ("require_pushed_authorization_requests", False),
        ),
        (("--par-lifetime", "120"), "par_lifetime", 120, ("par_lifetime", 120)),
        (
            ("--scope", "deployments.write inbox.read"),
            "scopes",
            ("deployments.write", "inbox.read"),
            ("scope", "deployments.write inbox.read"),
        ),
    ],
    ids=["name", "redirect-uri", "require-par", "no-require-par", "par-lifetime", "scope"],
)
def test_update_changes_one_setting_and_writes_an_event(
    data_dir: Path,
    args: tuple[str, ...],
    field: str,
    value: object,
    described: tuple[str, object],
) -> None:
    before = seed_client(data_dir)
    result = cli("clients", "update", "agent", *args, "--data-dir", data_dir)
    assert result.exit_code == 0, result.output

    after = get_client(data_dir, "agent")
    assert after is not None
    assert getattr(after, field) == value
    for name in ("name", "redirect_uris", "require_par", "par_lifetime", "scopes"):
        if name != field:
            assert getattr(after, name) == getattr(before, name), name
    assert after.secret_digest == before.secret_digest
    assert after.auth_method == before.auth_method
    assert after.updated_at > before.updated_at

    key, shown = described
    assert json.loads(result.output)[key] == shown

    [updated] = events(data_dir, "client.updated")
    assert updated.client_id == "agent"
    assert updated.data["after"][key] == shown
    assert updated.data["before"][key] != shown
    assert updated.data["before"]["name"] == "Invoice Agent"


def test_update_can_change_several_settings_at_once(data_dir: Path) -> None:
    seed_client(data_dir)
    result = cli(
        "clients",
        "update",
        "agent",
        "--name",
        "New",
        "--par-lifetime",
        "15",
        "--require-par",
        "--data-dir",
        data_dir,
    )
    assert result.exit_code == 0, result.output
    client = get_client(data_dir, "agent")
    assert client is not None
    assert (client.name, client.par_lifetime, client.require_par) == ("New", 15, True)
    assert len(events(data_dir, "client.updated")) == 1


def test_update_follow_server_par_forgets_the_clients_own_requirement(data_dir: Path) -> None:
    seed_client(data_dir, require_par=True)
    result = cli("clients", "update", "agent", "--follow-server-par", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    client = get_client(data_dir, "agent")
    assert client is not None
    assert client.require_par is None
    assert json.loads(result.output)["require_pushed_authorization_requests"] is None
    [updated] = events(data_dir, "client.updated")
    assert updated.data["before"]["require_pushed_authorization_requests"] is True
    assert updated.data["after"]["require_pushed_authorization_requests"] is None


def test_update_keeps_the_secret_working(data_dir: Path) -> None:
    seed_client(data_dir)
    assert cli("clients", "update", "agent", "--name", "X", "--data-dir", data_dir).exit_code == 0
    client = get_client(data_dir, "agent")
    assert client is not None
    assert client.secret_digest is not None
    assert digester(data_dir).matches("client_secret", SEEDED_SECRET, client.secret_digest)


def test_update_with_nothing_to_change_is_a_usage_error(data_dir: Path) -> None:
    before = seed_client(data_dir)
    result = cli("clients", "update", "agent", "--data-dir", data_dir)
    assert_clean_failure(result, "nothing to change", exit_code=2)
    assert get_client(data_dir, "agent") == before
    assert events(data_dir, "client.updated") == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--redirect-uri", "http://agent.example/cb"), "--redirect-uri"),
        (("--redirect-uri", "https://agent.example/cb#x"), "--redirect-uri"),
        (("--scope", "root"), "unknown scope 'root'"),
        (("--par-lifetime", "601"), "--par-lifetime"),
    ],
    ids=["http-redirect", "fragment", "scope", "par-lifetime"],
)
def test_update_refuses_invalid_settings(
    data_dir: Path, args: tuple[str, ...], fragment: str
) -> None:
    before = seed_client(data_dir)
    result = cli("clients", "update", "agent", *args, "--data-dir", data_dir)
    assert_clean_failure(result, fragment, exit_code=2)
    assert get_client(data_dir, "agent") == before
    assert events(data_dir, "client.updated") == []


def test_update_an_unknown_client_fails(data_dir: Path) -> None:
    result = cli("clients", "update", "nobody", "--name", "X", "--data-dir", data_dir)
    assert_clean_failure(result, "no client 'nobody'")
    assert events(data_dir, "client.updated") == []


def test_update_refuses_contradictory_par_options(data_dir: Path) -> None:
    result = cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "A",
        "--redirect-uri",
        REDIRECT_URI,
        "--client-id",
        "a",
    )
    assert result.exit_code == 0, result.output
    result = cli(
        "clients", "update", "a", "--data-dir", data_dir, "--require-par", "--follow-server-par"
    )
    assert result.exit_code == 2
    assert "contradicts" in result.output

"""``grantline clients``: the RFC 9396 types, RFC 8707 resources and introspection right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.cli.support import assert_usage_error, cli, events, get_client

REDIRECT_URI = "https://agent.example/callback"
PAYMENTS_API = "https://api.example/payments"
FILES_API = "https://api.example/files"


def add(data_dir: Path, *options: str) -> Result:
    return cli(
        "clients",
        "add",
        "--data-dir",
        data_dir,
        "--name",
        "Payments Agent",
        "--redirect-uri",
        REDIRECT_URI,
        "--client-id",
        "pay",
        *options,
    )


def update(data_dir: Path, *options: str) -> Result:
    return cli("clients", "update", "pay", "--data-dir", data_dir, *options)


# -- add ---------------------------------------------------------------------------------------


def test_add_stores_types_resources_and_introspection(data_dir: Path) -> None:
    result = add(
        data_dir,
        "--authorization-details-type",
        "payment_initiation",
        "--authorization-details-type",
        "file_access",
        "--resource",
        PAYMENTS_API,
        "--resource",
        FILES_API,
        "--can-introspect",
        "--json",
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["authorization_details_types"] == ["payment_initiation", "file_access"]
    assert printed["resources"] == [PAYMENTS_API, FILES_API]
    assert printed["can_introspect"] is True
    client = get_client(data_dir, "pay")
    assert client is not None
    assert client.authorization_details_types == ("payment_initiation", "file_access")
    assert client.resources == (PAYMENTS_API, FILES_API)
    assert client.can_introspect is True
    (event,) = events(data_dir, "client.registered")
    assert event.data["authorization_details_types"] == ["payment_initiation", "file_access"]
    assert event.data["resources"] == [PAYMENTS_API, FILES_API]
    assert event.data["can_introspect"] is True


def test_add_defaults_to_every_type_no_resources_and_no_introspection(data_dir: Path) -> None:
    result = add(data_dir)
    assert result.exit_code == 0, result.output
    client = get_client(data_dir, "pay")
    assert client is not None
    assert client.authorization_details_types == ()
    assert client.resources == ()
    assert client.can_introspect is False


def test_repeated_values_are_stored_once(data_dir: Path) -> None:
    result = add(
        data_dir,
        "--authorization-details-type",
        "deployment",
        "--authorization-details-type",
        "deployment",
        "--resource",
        FILES_API,
        "--resource",
        FILES_API,
    )
    assert result.exit_code == 0, result.output
    client = get_client(data_dir, "pay")
    assert client is not None
    assert client.authorization_details_types == ("deployment",)
    assert client.resources == (FILES_API,)


def test_an_unknown_type_is_refused(data_dir: Path) -> None:
    result = add(
        data_dir,
        "--authorization-details-type",
        "payment_initiation",
        "--authorization-details-type",
        "wire_transfer",
    )
    assert_usage_error(
        result,
        "--authorization-details-type",
        "unknown type 'wire_transfer'; configured: deployment file_access payment_initiation",
    )
    assert get_client(data_dir, "pay") is None
    assert not events(data_dir, "client.registered")


@pytest.mark.parametrize(
    "resource",
    [
        "https://api.example/payments#section",
        "https://api.example/payments#",
        "/payments",
        "api.example/payments",
        "//api.example/payments",
        "https://api.example/pay ments",
        "https:///payments",
    ],
)
def test_a_resource_that_is_not_an_absolute_uri_without_fragment_is_refused(
    data_dir: Path, resource: str
) -> None:
    result = add(data_dir, "--resource", PAYMENTS_API, "--resource", resource)
    assert_usage_error(
        result, "--resource", f"{resource!r} is not an absolute URI without a fragment"
    )
    assert get_client(data_dir, "pay") is None


# -- update ------------------------------------------------------------------------------------


@pytest.fixture
def registered(data_dir: Path) -> Path:
    result = add(data_dir, "--authorization-details-type", "file_access", "--resource", FILES_API)
    assert result.exit_code == 0, result.output
    return data_dir


def test_update_replaces_types_and_resources(registered: Path) -> None:
    result = update(
        registered,
        "--authorization-details-type",
        "payment_initiation",
        "--resource",
        PAYMENTS_API,
        "--resource",
        FILES_API,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["authorization_details_types"] == ["payment_initiation"]
    client = get_client(registered, "pay")
    assert client is not None
    assert client.authorization_details_types == ("payment_initiation",)
    assert client.resources == (PAYMENTS_API, FILES_API)
    assert client.can_introspect is False
    (event,) = events(registered, "client.updated")
    assert event.data["before"]["authorization_details_types"] == ["file_access"]
    assert event.data["after"]["authorization_details_types"] == ["payment_initiation"]
    assert event.data["before"]["resources"] == [FILES_API]
    assert event.data["after"]["resources"] == [PAYMENTS_API, FILES_API]


def test_update_grants_and_withdraws_introspection(registered: Path) -> None:
    assert update(registered, "--can-introspect").exit_code == 0
    client = get_client(registered, "pay")
    assert client is not None and client.can_introspect is True
    assert update(registered, "--no-can-introspect").exit_code == 0
    client = get_client(registered, "pay")
    assert client is not None and client.can_introspect is False
    changes = [
        (e.data["before"]["can_introspect"], e.data["after"]["can_introspect"])
        for e in events(registered, "client.updated")
    ]
    assert changes == [(False, True), (True, False)]


def test_update_without_these_options_keeps_them(registered: Path) -> None:
    assert update(registered, "--name", "Renamed").exit_code == 0
    client = get_client(registered, "pay")
    assert client is not None
    assert client.name == "Renamed"
    assert client.authorization_details_types == ("file_access",)
    assert client.resources == (FILES_API,)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--authorization-details-type", "wire_transfer"], "unknown type 'wire_transfer'"),
        (["--resource", "https://api.example/x#y"], "not an absolute URI without a fragment"),
        (["--resource", "relative/path"], "not an absolute URI without a fragment"),
    ],
)
def test_update_refuses_bad_values_and_changes_nothing(
    registered: Path, options: list[str], fragment: str
) -> None:
    before = get_client(registered, "pay")
    result = update(registered, "--can-introspect", *options)
    assert_usage_error(result, fragment)
    assert get_client(registered, "pay") == before
    assert not events(registered, "client.updated")


def test_show_prints_the_new_fields(registered: Path) -> None:
    result = cli("clients", "show", "pay", "--data-dir", registered)
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.output)
    assert shown["authorization_details_types"] == ["file_access"]
    assert shown["resources"] == [FILES_API]
    assert shown["can_introspect"] is False


def test_a_public_client_cannot_be_a_resource_server(data_dir: Path) -> None:
    result = add(data_dir, "--auth-method", "none", "--can-introspect")
    assert result.exit_code == 2
    assert "cannot be --can-introspect" in result.output
    assert get_client(data_dir, "pay") is None

from __future__ import annotations

import pytest

from grantline.errors import InvalidScope
from grantline.protocol.scope import check_scope_subset, parse_scope

KNOWN = ("inbox.read", "invoices.pay", "deployments.write")


def test_parses_known_scopes_in_order_without_repeats() -> None:
    assert parse_scope("invoices.pay inbox.read invoices.pay", KNOWN, ()) == (
        "invoices.pay",
        "inbox.read",
    )


def test_missing_scope_is_empty() -> None:
    assert parse_scope(None, KNOWN, ()) == ()


@pytest.mark.parametrize(
    ("raw", "allowed", "message"),
    [
        pytest.param("admin", (), "unknown", id="unknown"),
        pytest.param("invoices.pay", ("inbox.read",), "may not request", id="not-allowed"),
        pytest.param("inbox.read  invoices.pay", (), "single spaces", id="double-space"),
        pytest.param('inbox"read', (), "does not allow", id="bad-character"),
    ],
)
def test_refusals_are_invalid_scope(raw: str, allowed: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidScope, match=message) as info:
        parse_scope(raw, KNOWN, allowed)
    assert info.value.error == "invalid_scope"
    assert info.value.status_code == 400


def test_subset_check() -> None:
    check_scope_subset(("inbox.read",), ("inbox.read", "invoices.pay"))
    with pytest.raises(InvalidScope, match="not granted"):
        check_scope_subset(("deployments.write",), ("inbox.read",))

"""Properties of scope parsing (RFC 6749 3.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidScope
from grantline.protocol.scope import parse_scope
from tests.strategies import PROPERTY, hostile_text

KNOWN = ("inbox.read", "invoices.pay", "deployments.write")


@PROPERTY
@given(
    st.one_of(st.none(), hostile_text(60), st.lists(st.sampled_from(KNOWN)).map(" ".join)),
    st.lists(st.sampled_from(KNOWN), unique=True),
)
def test_any_scope_is_known_tokens_or_invalid_scope(raw: str | None, allowed: list[str]) -> None:
    try:
        scopes = parse_scope(raw, KNOWN, allowed)
    except InvalidScope as exc:
        assert exc.http_status == 400
        return
    assert len(set(scopes)) == len(scopes)
    assert all(s in KNOWN and (not allowed or s in allowed) for s in scopes)


@PROPERTY
@given(st.lists(st.sampled_from(KNOWN), min_size=1))
def test_known_scopes_come_back_in_order_without_repeats(tokens: list[str]) -> None:
    assert parse_scope(" ".join(tokens), KNOWN, ()) == tuple(dict.fromkeys(tokens))

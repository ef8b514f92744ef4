"""Properties of redirect URI matching (RFC 9700 4.1.3, RFC 8252 7.3) on hostile URIs."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import PageOnlyInvalidRequest
from grantline.protocol.redirect_uri import (
    resolve_redirect_uri,
    validate_registered_redirect_uri,
)
from tests.strategies import PROPERTY, uri_like

REGISTERED = ("https://agent.example/cb", "http://127.0.0.1/cb", "http://[::1]/cb")


@PROPERTY
@given(st.one_of(st.none(), uri_like()), st.lists(st.sampled_from(REGISTERED), min_size=1))
def test_any_redirect_uri_resolves_to_a_registered_one_or_a_page(
    requested: str | None, registered: list[str]
) -> None:
    try:
        resolved = resolve_redirect_uri(requested, tuple(registered))
    except PageOnlyInvalidRequest as exc:
        assert exc.error == "invalid_request"
        assert not exc.redirectable
        return
    if resolved in registered:
        return
    # Only the loopback rule may accept something not registered verbatim: same host and path,
    # any port (RFC 8252 7.3).
    parts = urlsplit(resolved)
    assert parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")
    assert parts.path == "/cb" and not parts.fragment


@PROPERTY
@given(uri_like())
def test_registration_checks_raise_value_error_only(uri: str) -> None:
    with contextlib.suppress(ValueError):
        assert validate_registered_redirect_uri(uri) == uri


@pytest.mark.parametrize("requested", ["http://[::1", "http://127.0.0.1:99999/cb", "http://["])
def test_malformed_uris_are_refused_as_a_page(requested: str) -> None:
    with pytest.raises(PageOnlyInvalidRequest, match="not registered"):
        resolve_redirect_uri(requested, REGISTERED)

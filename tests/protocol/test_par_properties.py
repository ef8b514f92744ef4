"""Properties of the request_uri and front-channel rules (RFC 9126)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidRequestUri, PageOnlyInvalidRequest
from grantline.protocol.par import (
    REQUEST_URI_PREFIX,
    check_front_channel_params,
    request_uri_secret,
)
from tests.strategies import PROPERTY, hostile_text

_URIS = st.one_of(hostile_text(200), hostile_text(200).map(lambda s: REQUEST_URI_PREFIX + s))


@PROPERTY
@given(_URIS)
def test_any_request_uri_is_our_secret_or_invalid_request_uri(request_uri: str) -> None:
    try:
        secret = request_uri_secret(request_uri)
    except InvalidRequestUri as exc:
        assert exc.http_status == 400 and not exc.redirectable
        return
    assert request_uri == REQUEST_URI_PREFIX + secret
    assert 0 < len(secret) <= 128


_PARAMS = st.dictionaries(
    st.sampled_from(["client_id", "request_uri", "scope", "state", "redirect_uri"]),
    hostile_text(20),
    max_size=5,
)


@PROPERTY
@given(_PARAMS, _PARAMS)
def test_front_channel_parameters_equal_the_pushed_ones_or_a_page(
    front: dict[str, str], pushed: dict[str, str]
) -> None:
    try:
        check_front_channel_params(front, pushed)
    except PageOnlyInvalidRequest:
        return
    for name, value in front.items():
        assert name in ("client_id", "request_uri") or pushed.get(name) == value

from __future__ import annotations

import pytest

from grantline.errors import PageOnlyInvalidRequest
from grantline.protocol.redirect_uri import (
    resolve_redirect_uri,
    validate_registered_redirect_uri,
)

REGISTERED = ("https://agent.example/cb", "https://agent.example/other")


def test_exact_match_is_accepted() -> None:
    assert resolve_redirect_uri("https://agent.example/cb", REGISTERED) == REGISTERED[0]


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("https://agent.example/cb/", id="trailing-slash"),
        pytest.param("https://agent.example/cb?x=1", id="extra-query"),
        pytest.param("https://AGENT.example/cb", id="case"),
        pytest.param("https://agent.example.evil/cb", id="suffix-host"),
        pytest.param("https://agent.example/cb#f", id="fragment"),
    ],
)
def test_anything_but_exact_match_is_refused_and_never_redirected(requested: str) -> None:
    with pytest.raises(PageOnlyInvalidRequest, match="not registered") as info:
        resolve_redirect_uri(requested, REGISTERED)
    assert info.value.redirectable is False
    assert info.value.error == "invalid_request"


def test_omitted_with_one_registered_uses_it() -> None:
    assert resolve_redirect_uri(None, REGISTERED[:1]) == REGISTERED[0]


def test_omitted_with_several_registered_is_refused() -> None:
    with pytest.raises(PageOnlyInvalidRequest, match="required"):
        resolve_redirect_uri(None, REGISTERED)


@pytest.mark.parametrize(
    "uri",
    [
        "https://agent.example/cb",
        "http://127.0.0.1:9000/cb",
        "http://localhost/cb",
        "com.example.agent:/callback",
    ],
)
def test_registration_accepts(uri: str) -> None:
    assert validate_registered_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("/relative", "not absolute"),
        ("https://agent.example/cb#frag", "fragment"),
        ("http://agent.example/cb", "https"),
        ("javascript:alert(1)", "not allowed"),
        ("data:text/html,hi", "not allowed"),
        ("https:///cb", "no host"),
        ("https:foo", "no host"),
    ],
)
def test_registration_refuses(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_registered_redirect_uri(uri)


def test_loopback_ip_redirect_uris_may_use_any_port() -> None:
    registered = ("http://127.0.0.1/cb", "http://[::1]:8080/native")
    assert resolve_redirect_uri("http://127.0.0.1:53127/cb", registered) == (
        "http://127.0.0.1:53127/cb"
    )
    assert resolve_redirect_uri("http://[::1]:1/native", registered) == "http://[::1]:1/native"


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("http://127.0.0.1:9/other", id="other-path"),
        pytest.param("http://127.0.0.1:9/cb?x=1", id="added-query"),
        pytest.param("https://127.0.0.1:9/cb", id="other-scheme"),
        pytest.param("http://127.0.0.2:9/cb", id="other-address"),
        pytest.param("http://user@127.0.0.1:9/cb", id="userinfo"),
        pytest.param("http://127.0.0.1:notaport/cb", id="bad-port"),
        pytest.param("http://localhost:9/cb", id="localhost-name"),
    ],
)
def test_only_the_port_of_a_loopback_redirect_uri_may_vary(requested: str) -> None:
    with pytest.raises(PageOnlyInvalidRequest):
        resolve_redirect_uri(requested, ("http://127.0.0.1/cb",))


def test_localhost_registrations_match_exactly() -> None:
    with pytest.raises(PageOnlyInvalidRequest):
        resolve_redirect_uri("http://localhost:9/cb", ("http://localhost/cb",))

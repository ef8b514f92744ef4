from __future__ import annotations

import base64

import pytest

from grantline.client_auth import present_credentials
from grantline.errors import InvalidClient, InvalidRequest


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_basic_credentials_are_form_decoded() -> None:
    # RFC 6749 2.3.1: both parts are application/x-www-form-urlencoded before base64.
    presented = present_credentials(basic("my%3Aagent", "s%2Bcret+x"), {})
    assert presented.client_id == "my:agent"
    assert presented.secret == "s+cret x"
    assert presented.method == "client_secret_basic"


def test_post_and_none_methods() -> None:
    post = present_credentials(None, {"client_id": "a", "client_secret": "s"})
    assert (post.method, post.secret) == ("client_secret_post", "s")
    public = present_credentials(None, {"client_id": "a"})
    assert (public.method, public.secret) == ("none", None)


@pytest.mark.parametrize(
    ("authorization", "params", "error"),
    [
        pytest.param(None, {}, InvalidClient, id="nothing"),
        pytest.param("Bearer abc", {}, InvalidClient, id="wrong-scheme"),
        pytest.param("Basic %%%", {}, InvalidClient, id="not-base64"),
        pytest.param(
            "Basic " + base64.b64encode(b"no-colon").decode(), {}, InvalidClient, id="no-colon"
        ),
        pytest.param(
            "Basic " + base64.b64encode(b"\xff:\xfe").decode(), {}, InvalidClient, id="not-utf8"
        ),
        pytest.param(basic("a", "s"), {"client_secret": "s"}, InvalidRequest, id="two-methods"),
        pytest.param(basic("a", "s"), {"client_id": "b"}, InvalidRequest, id="id-mismatch"),
    ],
)
def test_malformed_credentials(
    authorization: str | None, params: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        present_credentials(authorization, params)

"""Properties of the CSRF check on the login and consent forms."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from grantline.tokens.digest import Digester
from grantline.web.browser import csrf_token, csrf_valid
from tests.strategies import PROPERTY, hostile_text

DIGESTER = Digester(b"k" * 32)


@PROPERTY
@given(st.one_of(st.none(), hostile_text(80)))
def test_any_presented_token_is_just_valid_or_not(presented: str | None) -> None:
    assert csrf_valid(DIGESTER, "browser", "interaction", presented) is False
    issued = csrf_token(DIGESTER, "browser", "interaction")
    assert csrf_valid(DIGESTER, "browser", "interaction", issued) is True


def test_a_non_ascii_token_is_simply_invalid() -> None:
    assert csrf_valid(DIGESTER, "browser", "interaction", "é" * 64) is False

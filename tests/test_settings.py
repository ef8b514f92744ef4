from __future__ import annotations

import pytest

from grantline.settings import Settings

KEY = b"k" * 32


def test_defaults_follow_the_rfcs() -> None:
    settings = Settings(issuer="https://as.example", database_url="sqlite:///x", secret_key=KEY)
    assert settings.require_pushed_authorization_requests is True
    assert settings.par_lifetime == 60
    assert settings.code_lifetime <= 60
    assert settings.secure_cookies is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"par_lifetime": 601}, "par_lifetime"),
        ({"par_lifetime": 0}, "par_lifetime"),
        ({"code_lifetime": 61}, "code_lifetime"),
        ({"secret_key": b"short"}, "secret_key"),
        ({"issuer": "https://as.example/?x=1"}, "query"),
        ({"issuer": "http://as.example"}, "https"),
        ({"issuer": "ftp://as.example"}, "absolute"),
    ],
)
def test_unsafe_settings_are_refused(options: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "issuer": "https://as.example",
        "database_url": "sqlite:///x",
        "secret_key": KEY,
    }
    with pytest.raises(ValueError, match=message):
        Settings(**{**base, **options})  # type: ignore[arg-type]


def test_http_issuer_is_allowed_on_loopback() -> None:
    settings = Settings(issuer="http://127.0.0.1:8000", database_url="sqlite:///x", secret_key=KEY)
    assert settings.secure_cookies is False

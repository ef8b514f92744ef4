"""Browser state: the browser cookie that binds interactions, the session cookie, CSRF tokens.

Cookies are HttpOnly and SameSite=Lax, and Secure whenever the issuer is HTTPS. CSRF tokens are
keyed digests of the browser cookie and the interaction, so they need no storage and a token
taken from one browser or one interaction is useless in another.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from grantline.tokens.digest import Digester

__all__ = [
    "BROWSER_COOKIE",
    "SESSION_COOKIE",
    "csrf_token",
    "cookie",
    "csrf_valid",
    "set_cookie",
]

BROWSER_COOKIE = "grantline_browser"
SESSION_COOKIE = "grantline_session"


def set_cookie(response: Response, name: str, value: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax"
    )


def cookie(request: Request, name: str) -> str | None:
    value = request.cookies.get(name)
    return value if value and len(value) <= 128 else None


def csrf_token(digester: Digester, browser_token: str, interaction_token: str) -> str:
    return digester.digest("csrf", f"{browser_token}|{interaction_token}")


def csrf_valid(
    digester: Digester, browser_token: str, interaction_token: str, presented: str | None
) -> bool:
    # compare_digest raises on non-ASCII text, and no token we issue has any.
    if presented is None or not presented.isascii():
        return False
    return hmac.compare_digest(csrf_token(digester, browser_token, interaction_token), presented)

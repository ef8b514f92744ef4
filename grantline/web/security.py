"""Security headers on every response (RFC 9700 4.16 clickjacking, 4.2.4 referrer leakage)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grantline.web.responses import NO_STORE

__all__ = ["HSTS_HEADER", "SECURITY_HEADERS", "SecurityHeaders", "refusal_headers"]

# No form-action: browsers apply it to the redirect that follows the consent form's POST, and
# that redirect goes to the client's redirect_uri on another origin.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]

#: Sent whenever the issuer is https (RFC 6797).
HSTS_HEADER = (b"strict-transport-security", b"max-age=31536000")


def refusal_headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    """What a response built outside the application (a refusal by a middleware or by the
    HTTP protocol layer) carries: never cached, and the same security headers as any page."""
    return [
        *((k.lower().encode("ascii"), v.encode("ascii")) for k, v in NO_STORE.items()),
        *SECURITY_HEADERS,
        *([HSTS_HEADER] if hsts else []),
    ]


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers without wrapping the response body."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS)
        if hsts:
            self.headers.append(HSTS_HEADER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.headers]
                # Not cacheable unless a response says otherwise (discovery does): a redirect
                # that sets a session cookie or names an interaction must never be stored.
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

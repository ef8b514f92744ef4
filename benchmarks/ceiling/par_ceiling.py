"""The minimal-handler ceiling: the irreducible work of a PAR push in a raw ASGI application.

No framework, no audit trail, no validation beyond what any PAR endpoint must do:

- Basic authentication (RFC 6749 2.3.1) against the client's stored keyed digest
  (HMAC-SHA256 under the instance key, compared in constant time), read from SQLite;
- a strict form parse: the media type, a size limit, no repeated parameter, the required
  parameters, the registered redirect_uri, PKCE S256;
- a 256-bit reference whose keyed digest is stored with the request in SQLite (WAL,
  synchronous=NORMAL, the same settings as Grantline), committed before answering;
- 201 with ``{"request_uri": ..., "expires_in": 60}``.

Errors use the OAuth shape. It runs under uvicorn (httptools, uvloop) with one worker:
``uvicorn --factory --app-dir benchmarks/ceiling par_ceiling:app_from_environment``, with
CEILING_DB naming a database made by ``init_database`` and CEILING_KEY its key in hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

__all__ = ["Ceiling", "app_from_environment", "digest", "init_database"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME = 60
MAX_BODY = 64 * 1024
_REQUIRED = ("response_type", "redirect_uri", "code_challenge", "code_challenge_method")
# Computed for unknown clients too, so that a miss costs what a wrong secret costs.
_DUMMY_DIGEST = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY, secret_digest TEXT NOT NULL, redirect_uris TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pushed_requests (
    request_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, params TEXT NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
"""


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def digest(key: bytes, purpose: str, value: str) -> str:
    message = purpose.encode("ascii") + b"\x00" + value.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def init_database(
    path: str, key: bytes, client_id: str, secret: str, redirect_uris: list[str]
) -> None:
    conn = connect(path)
    try:
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT OR REPLACE INTO clients VALUES (?, ?, ?)",
            (client_id, digest(key, "client_secret", secret), json.dumps(redirect_uris)),
        )
    finally:
        conn.close()


def _basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
    values = [v for k, v in headers if k.lower() == b"authorization"]
    if len(values) != 1 or values[0][:6].lower() != b"basic ":
        raise OAuthError(401, "invalid_client", "Client authentication is required.")
    try:
        decoded = base64.b64decode(values[0][6:].strip(), validate=True).decode("utf-8")
        raw_id, sep, raw_secret = decoded.partition(":")
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except (binascii.Error, UnicodeError):
        raise OAuthError(401, "invalid_client", "Malformed Basic credentials.") from None
    if not sep or not client_id:
        raise OAuthError(401, "invalid_client", "Malformed Basic credentials.")
    return client_id, secret


def parse_form(headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded, UTF-8, each parameter at most once."""
    types = [v for k, v in headers if k.lower() == b"content-type"]
    media = types[0].split(b";", 1)[0].strip().lower() if len(types) == 1 else b""
    if media != b"application/x-www-form-urlencoded":
        raise OAuthError(400, "invalid_request", "The body must be a form.")
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body), errors="strict"
        )
    except (UnicodeError, ValueError):
        raise OAuthError(400, "invalid_request", "The form is malformed.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise OAuthError(400, "invalid_request", f"{name} is repeated.")
        params[name] = value
    return params


class Ceiling:
    """The ASGI application: POST /par and nothing else."""

    def __init__(self, db_path: str, key: bytes) -> None:
        self._conn = connect(db_path)
        self._key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            if scope["path"] != "/par":
                raise OAuthError(404, "invalid_request", "Not found.")
            if scope["method"] != "POST":
                raise OAuthError(405, "invalid_request", "Use POST.")
            body = await _read_body(receive)
            status, payload = self.push(scope["headers"], body)
        except OAuthError as exc:
            status, payload = exc.status, {"error": exc.error, "error_description": exc.description}
        await _send_json(send, status, payload)

    def push(self, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, dict[str, Any]]:
        client_id, secret = _basic_credentials(headers)
        row = self._conn.execute(
            "SELECT secret_digest, redirect_uris FROM clients WHERE client_id = ?", (client_id,)
        ).fetchone()
        stored = row[0] if row is not None else _DUMMY_DIGEST
        valid = hmac.compare_digest(digest(self._key, "client_secret", secret), stored)
        if row is None or not valid:
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        params = parse_form(headers, body)
        missing = [name for name in _REQUIRED if not params.get(name)]
        if missing:
            raise OAuthError(400, "invalid_request", f"{missing[0]} is required.")
        if params.get("client_id", client_id) != client_id:
            raise OAuthError(400, "invalid_request", "client_id does not match.")
        if params["response_type"] != "code":
            raise OAuthError(400, "unsupported_response_type", "Only code is supported.")
        if params["redirect_uri"] not in json.loads(row[1]):
            raise OAuthError(400, "invalid_request", "The redirect_uri is not registered.")
        if params["code_challenge_method"] != "S256":
            raise OAuthError(400, "invalid_request", "PKCE needs code_challenge_method S256.")
        secret_ref = secrets.token_urlsafe(32)
        now = int(time.time())
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute(
                "INSERT INTO pushed_requests VALUES (?, ?, ?, ?, ?)",
                (
                    digest(self._key, "request_uri", secret_ref),
                    client_id,
                    json.dumps(params),
                    now,
                    now + LIFETIME,
                ),
            )
        return 201, {"request_uri": REQUEST_URI_PREFIX + secret_ref, "expires_in": LIFETIME}


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise OAuthError(400, "invalid_request", "The client went away.")
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > MAX_BODY:
            raise OAuthError(413, "invalid_request", "The body is too large.")
        if not message.get("more_body", False):
            return body


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="par"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def app_from_environment() -> Ceiling:
    return Ceiling(os.environ["CEILING_DB"], bytes.fromhex(os.environ["CEILING_KEY"]))

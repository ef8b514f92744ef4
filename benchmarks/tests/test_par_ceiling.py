"""The ceiling does the irreducible PAR work and refuses what any PAR endpoint must refuse."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from par_ceiling import REQUEST_URI_PREFIX, Ceiling, digest, init_database

KEY = b"k" * 32
SECRET = "s3cret-value"
REDIRECT = "https://bench.example/cb"
FORM = {
    "response_type": "code",
    "redirect_uri": REDIRECT,
    "scope": "inbox.read",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ceiling.db"
    init_database(str(path), KEY, "bench", SECRET, [REDIRECT])
    return path


def _client(db: Path) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=Ceiling(str(db), KEY))
    return httpx.AsyncClient(transport=transport, base_url="http://ceiling")


async def test_push_stores_only_the_digest_of_a_256_bit_reference(db: Path) -> None:
    async with _client(db) as client:
        response = await client.post("/par", auth=("bench", SECRET), data=FORM)
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == 60
    secret = body["request_uri"].removeprefix(REQUEST_URI_PREFIX)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    rows = sqlite3.connect(db).execute("SELECT request_id, params FROM pushed_requests").fetchall()
    assert rows == [(digest(KEY, "request_uri", secret), json.dumps(FORM))]


@pytest.mark.parametrize(
    "auth",
    [("bench", "wrong"), ("nobody", SECRET), None],
    ids=["wrong-secret", "unknown-client", "no-credentials"],
)
async def test_bad_client_credentials_are_401_invalid_client(
    db: Path, auth: tuple[str, str] | None
) -> None:
    async with _client(db) as client:
        if auth is None:
            response = await client.post("/par", data=FORM)
        else:
            response = await client.post("/par", auth=auth, data=FORM)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_malformed_basic_credentials_are_401(db: Path) -> None:
    async with _client(db) as client:
        response = await client.post("/par", headers={"Authorization": "Basic %%%"}, data=FORM)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("response_type=code&response_type=token", "invalid_request"),
        ("response_type=code", "invalid_request"),
        (httpx.QueryParams({**FORM, "redirect_uri": "https://evil.example/cb"}), "invalid_request"),
        (httpx.QueryParams({**FORM, "code_challenge_method": "plain"}), "invalid_request"),
        (httpx.QueryParams({**FORM, "response_type": "token"}), "unsupported_response_type"),
        (httpx.QueryParams({**FORM, "client_id": "someone-else"}), "invalid_request"),
        ("response_type=%FF", "invalid_request"),
    ],
    ids=[
        "repeated",
        "missing",
        "unregistered-redirect",
        "plain-pkce",
        "token-response",
        "other-client-id",
        "not-utf8",
    ],
)
async def test_bad_requests_are_400(db: Path, body: object, error: str) -> None:
    async with _client(db) as client:
        response = await client.post(
            "/par",
            auth=("bench", SECRET),
            content=str(body),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert sqlite3.connect(db).execute("SELECT count(*) FROM pushed_requests").fetchone() == (0,)


async def test_json_body_is_400(db: Path) -> None:
    async with _client(db) as client:
        response = await client.post("/par", auth=("bench", SECRET), json=FORM)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_oversized_body_is_413(db: Path) -> None:
    async with _client(db) as client:
        response = await client.post(
            "/par",
            auth=("bench", SECRET),
            content=b"a=" + b"x" * (64 * 1024),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_other_methods_and_paths_are_refused(db: Path) -> None:
    async with _client(db) as client:
        wrong_method = await client.get("/par")
        wrong_path = await client.post("/token", auth=("bench", SECRET), data=FORM)
    assert (wrong_method.status_code, wrong_path.status_code) == (405, 404)

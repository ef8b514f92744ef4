from __future__ import annotations

import httpx

from grantline.storage.sql import SQLiteStore


async def test_metadata_document(http: httpx.AsyncClient) -> None:
    response = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == "http://127.0.0.1:8000"
    assert doc["pushed_authorization_request_endpoint"] == "http://127.0.0.1:8000/par"
    assert doc["require_pushed_authorization_requests"] is True
    assert doc["code_challenge_methods_supported"] == ["S256"]


async def test_jwks_publishes_public_keys_only(http: httpx.AsyncClient, store: SQLiteStore) -> None:
    async with store.reader() as tx:
        (stored,) = await tx.list_signing_keys()
    response = await http.get("/jwks")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kid"] == stored.kid
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
    assert "d" not in key


async def test_static_stylesheet_is_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/static/grantline.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")

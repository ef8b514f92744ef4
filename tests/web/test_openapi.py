"""The OpenAPI document: every route is in it, it is valid OpenAPI 3.1, and it is served."""

from __future__ import annotations

import dataclasses

import httpx
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
from starlette.routing import Mount, Route

from grantline.app import create_app
from grantline.errors import OAuthError
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from grantline.web.openapi import ERROR_CODES, UNDOCUMENTED_PATHS, openapi_document
from tests.helpers import ISSUER, FrozenClock

_METHODS = {"get", "post", "put", "patch", "delete"}


def _routes(settings: Settings, store: SQLiteStore, clock: FrozenClock) -> set[tuple[str, str]]:
    # A development instance has every route there is, /dev/callback included.
    app = create_app(dataclasses.replace(settings, dev_mode=True), store, clock=clock)
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Mount):
            found.add((route.path, "mount"))
        else:
            assert isinstance(route, Route), route
            found |= {(route.path, m.lower()) for m in route.methods or () if m != "HEAD"}
    return found


def test_every_route_is_documented_and_nothing_else(
    settings: Settings, store: SQLiteStore, clock: FrozenClock
) -> None:
    routes = {(p, m) for p, m in _routes(settings, store, clock) if p not in UNDOCUMENTED_PATHS}
    document = openapi_document(settings)
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in _METHODS
    }
    assert documented == routes
    # The exclusions name real routes, so that a renamed page cannot hide a new one.
    every_path = {p for p, _ in _routes(settings, store, clock)}
    assert every_path >= UNDOCUMENTED_PATHS


def test_the_document_is_valid_openapi_3_1(settings: Settings) -> None:
    validate(openapi_document(settings), cls=OpenAPIV31SpecValidator)


def test_every_error_the_server_raises_is_in_the_documented_vocabulary() -> None:
    def subclasses(cls: type[OAuthError]) -> list[type[OAuthError]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    raised = {cls.error for cls in subclasses(OAuthError)}
    assert raised <= set(ERROR_CODES)


def test_operations_declare_their_responses_and_ids(settings: Settings) -> None:
    document = openapi_document(settings)
    ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert operation["responses"], f"{method} {path} has no responses"
            if method == "post" and path != "/actions":
                media = operation["requestBody"]["content"]
                assert list(media) == ["application/x-www-form-urlencoded"], path
    assert len(ids) == len(set(ids))
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"clientSecretBasic", "privateKeyJwt", "dpop"}


async def test_the_document_is_served_with_this_issuer(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": ISSUER}]
    assert "/par" in document["paths"]

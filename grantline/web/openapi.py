"""The OpenAPI 3.1 description of every HTTP endpoint, served at ``GET /openapi.json``.

Built from Python data so that it follows the settings (the server URL is the issuer) and the
error vocabulary stays one list. ``tests/web/test_openapi.py`` keeps it honest: every route is
documented, and the document is valid against the OpenAPI 3.1 schema; the endpoint fuzzer
(``tests/integration/test_fuzz.py``) generates its requests from it and checks the answers
against it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from grantline.endpoints._common import context_of
from grantline.protocol.client_assertion import JWT_BEARER
from grantline.settings import Settings
from grantline.web.responses import json_response

__all__ = ["ERROR_CODES", "UNDOCUMENTED_PATHS", "openapi", "openapi_document"]

#: Every ``error`` a JSON refusal may carry, by the RFC that defines it.
ERROR_CODES: tuple[str, ...] = (
    # RFC 6749 4.1.2.1 and 5.2
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "unsupported_response_type",
    "server_error",
    "temporarily_unavailable",
    # RFC 9101 6.3 / RFC 9126 2.3
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    # RFC 9396 5
    "invalid_authorization_details",
    # RFC 8707 2
    "invalid_target",
    # RFC 9449 5 and 8
    "invalid_dpop_proof",
    "use_dpop_nonce",
)

#: Routes deliberately left out: development-only pages and static files.
UNDOCUMENTED_PATHS = frozenset({"/dev/callback", "/static"})

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_HTML = "text/html"
_STRING = {"type": "string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(ref: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{ref}"}


def _json_body(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}, **extra}


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_HTML: {"schema": _STRING}}}


_SEE_OTHER = {
    "description": "See Other: on to the next step (RFC 6749 4.1.2), or to the client's "
    "redirect_uri with the code or the error.",
    "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
}

_CLIENT_AUTH_FIELDS: dict[str, Any] = {
    "client_id": {
        "type": "string",
        "description": "Public clients and client_secret_post (RFC 6749 2.3.1); must match "
        "the authenticated client when sent beside other credentials.",
    },
    "client_secret": {"type": "string", "description": "client_secret_post (RFC 6749 2.3.1)."},
    "client_assertion_type": {"type": "string", "enum": [JWT_BEARER]},
    "client_assertion": {
        "type": "string",
        "description": "private_key_jwt (RFC 7523 2.2): a JWT signed by the client.",
    },
}

_AUTHORIZATION_REQUEST_FIELDS: dict[str, Any] = {
    "response_type": {"type": "string", "enum": ["code"]},
    "redirect_uri": {"type": "string", "format": "uri"},
    "scope": {"type": "string", "description": "Space-separated scope tokens (RFC 6749 3.3)."},
    "state": {"type": "string", "maxLength": 2048},
    "code_challenge": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
    "code_challenge_method": {"type": "string", "enum": ["S256"]},
    "authorization_details": {
        "type": "string",
        "description": "RFC 9396: a JSON array of objects, at most 16 items and 8 KiB.",
    },
    "resource": {
        "type": "array",
        "items": {"type": "string", "format": "uri"},
        "maxItems": 16,
        "description": "RFC 8707: repeat the parameter for several resources.",
    },
    "response_mode": {"type": "string", "enum": ["query"]},
    "dpop_jkt": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
}

_RESOURCE_ENCODING = {"resource": {"style": "form", "explode": True}}


def _form(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    media: dict[str, Any] = {"schema": schema}
    if "resource" in properties:
        media["encoding"] = _RESOURCE_ENCODING
    return {"required": True, "content": {_FORM: media}}


def _back_channel_errors(*extra: str) -> dict[str, Any]:
    responses = {
        "400": _response("BadRequest"),
        "401": _response("Unauthorized"),
        "413": _response("TooLarge"),
        "429": _response("TooManyRequests"),
        "503": _response("Unavailable"),
    }
    for status in extra:
        responses[status] = _response({"403": "Forbidden"}[status])
    return responses


def _page_errors(*statuses: str) -> dict[str, Any]:
    described = {
        "400": "The refusal, shown to the person (never redirected; RFC 6749 4.1.2.1).",
        "403": "The form did not come from this browser, or sign-in closed after failures.",
        "413": "The form is larger than max_body_bytes.",
        "414": "The query string is longer than max_query_bytes.",
        "429": "Too many requests from this address.",
        "503": "The server is busy or cannot reach its database.",
    }
    return {status: _page(described[status]) for status in statuses}


_BACK_CHANNEL_SECURITY: list[dict[str, list[str]]] = [
    {"clientSecretBasic": []},
    {"privateKeyJwt": []},
    {},
]
_PROOF_SECURITY: list[dict[str, list[str]]] = [
    {"clientSecretBasic": []},
    {"clientSecretBasic": [], "dpop": []},
    {"privateKeyJwt": []},
    {"privateKeyJwt": [], "dpop": []},
    {"dpop": []},
    {},
]


def _paths() -> dict[str, Any]:
    interaction_token = {
        "name": "token",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The interaction reference the authorization endpoint redirected to.",
    }
    return {
        "/.well-known/oauth-authorization-server": {
            "get": {
                "summary": "Authorization server metadata (RFC 8414)",
                "operationId": "metadata",
                "security": [],
                "responses": {"200": _json_body("The metadata.", _ref("ServerMetadata"))},
            }
        },
        "/jwks": {
            "get": {
                "summary": "Public signing keys (RFC 7517)",
                "operationId": "jwks",
                "security": [],
                "responses": {"200": _json_body("The JWK Set.", _ref("JwkSet"))},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": _json_body("OpenAPI 3.1.", {"type": "object"})},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the database answers",
                "operationId": "healthz",
                "security": [],
                "responses": {
                    "200": _json_body("Healthy.", _ref("Health")),
                    "503": _json_body("The database cannot be reached.", _ref("Health")),
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the process can issue tokens",
                "operationId": "readyz",
                "security": [],
                "responses": {
                    "200": _json_body("Ready.", _ref("Health")),
                    "503": _json_body("Not ready.", _ref("Health")),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The Prometheus text format.",
                        "content": {"text/plain": {"schema": _STRING}},
                    }
                },
            }
        },
        "/par": {
            "post": {
                "summary": "Pushed authorization request (RFC 9126 2)",
                "operationId": "pushedAuthorizationRequest",
                "security": _PROOF_SECURITY,
                "requestBody": _form(
                    {
                        **_AUTHORIZATION_REQUEST_FIELDS,
                        "request": {
                            "type": "string",
                            "description": "A signed request object (RFC 9101); the other "
                            "parameters are then taken from it.",
                        },
                        **_CLIENT_AUTH_FIELDS,
                    }
                ),
                "responses": {
                    "201": _json_body("The request was stored.", _ref("PushedRequest")),
                    **_back_channel_errors(),
                },
            }
        },
        "/authorize": {
            "get": {
                "summary": "Authorization endpoint (RFC 6749 3.1, RFC 9126 4)",
                "operationId": "authorize",
                "security": [],
                "parameters": [
                    {"name": "client_id", "in": "query", "required": True, "schema": _STRING},
                    {"name": "request_uri", "in": "query", "schema": _STRING},
                    *(
                        {
                            "name": name,
                            "in": "query",
                            "schema": schema,
                            **({"explode": True} if name == "resource" else {}),
                        }
                        for name, schema in _AUTHORIZATION_REQUEST_FIELDS.items()
                    ),
                ],
                "responses": {
                    "303": _SEE_OTHER,
                    **_page_errors("400", "414", "429", "503"),
                },
            }
        },
        "/interaction/{token}": {
            "get": {
                "summary": "The sign-in page, or the consent page once signed in",
                "operationId": "showInteraction",
                "security": [],
                "parameters": [interaction_token],
                "responses": {
                    "200": _page("The sign-in or consent page."),
                    **_page_errors("400", "429", "503"),
                },
            }
        },
        "/interaction/{token}/login": {
            "post": {
                "summary": "Sign in",
                "operationId": "login",
                "security": [],
                "parameters": [interaction_token],
                "requestBody": _form(
                    {"csrf_token": _STRING, "username": _STRING, "password": _STRING},
                    ["csrf_token"],
                ),
                "responses": {
                    "303": _SEE_OTHER,
                    **_page_errors("400", "403", "413", "429", "503"),
                },
            }
        },
        "/interaction/{token}/decision": {
            "post": {
                "summary": "Approve or deny",
                "operationId": "decide",
                "security": [],
                "parameters": [interaction_token],
                "requestBody": _form(
                    {
                        "csrf_token": _STRING,
                        "decision": {"type": "string", "enum": ["approve", "deny"]},
                    },
                    ["csrf_token", "decision"],
                )
                | {
                    "description": "Ticked authorization details items come back as "
                    "detail_<index>=on; approving with none ticked denies."
                },
                "responses": {
                    "303": _SEE_OTHER,
                    **_page_errors("400", "403", "413", "429", "503"),
                },
            }
        },
        "/token": {
            "post": {
                "summary": "Token endpoint (RFC 6749 3.2): authorization_code and refresh_token",
                "operationId": "token",
                "security": _PROOF_SECURITY,
                "requestBody": _form(
                    {
                        "grant_type": {
                            "type": "string",
                            "enum": ["authorization_code", "refresh_token"],
                        },
                        "code": _STRING,
                        "redirect_uri": {"type": "string", "format": "uri"},
                        "code_verifier": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9._~-]{43,128}$",
                        },
                        "refresh_token": _STRING,
                        "scope": _AUTHORIZATION_REQUEST_FIELDS["scope"],
                        "resource": _AUTHORIZATION_REQUEST_FIELDS["resource"],
                        "authorization_details": _AUTHORIZATION_REQUEST_FIELDS[
                            "authorization_details"
                        ],
                        **_CLIENT_AUTH_FIELDS,
                    },
                    ["grant_type"],
                ),
                "responses": {
                    "200": _json_body("Tokens (RFC 6749 5.1).", _ref("TokenResponse")),
                    **_back_channel_errors(),
                },
            }
        },
        "/introspect": {
            "post": {
                "summary": "Token introspection (RFC 7662)",
                "operationId": "introspect",
                "security": _BACK_CHANNEL_SECURITY,
                "requestBody": _form(
                    {
                        "token": _STRING,
                        "token_type_hint": {
                            "type": "string",
                            "description": "access_token or refresh_token; others are ignored.",
                        },
                        **_CLIENT_AUTH_FIELDS,
                    },
                    ["token"],
                ),
                "responses": {
                    "200": _json_body("What the caller may know.", _ref("Introspection")),
                    **_back_channel_errors(),
                },
            }
        },
        "/revoke": {
            "post": {
                "summary": "Token revocation (RFC 7009)",
                "operationId": "revoke",
                "security": _BACK_CHANNEL_SECURITY,
                "requestBody": _form(
                    {"token": _STRING, "token_type_hint": _STRING, **_CLIENT_AUTH_FIELDS},
                    ["token"],
                ),
                "responses": {
                    "200": {"description": "Revoked, or unknown (RFC 7009 2.2)."},
                    **_back_channel_errors(),
                },
            }
        },
        "/actions": {
            "post": {
                "summary": "A resource server reports what it did with an access token",
                "operationId": "reportAction",
                "security": [{"clientSecretBasic": []}],
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": _ref("ActionReport")}},
                },
                "responses": {
                    "202": _json_body(
                        "Recorded, or already recorded under this report_id.",
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {
                                "status": {"type": "string", "enum": ["recorded", "duplicate"]}
                            },
                        },
                    ),
                    **_back_channel_errors("403"),
                },
            }
        },
    }


def _schemas() -> dict[str, Any]:
    return {
        "OAuthError": {
            "type": "object",
            "description": "RFC 6749 5.2 error response.",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "enum": list(ERROR_CODES)},
                "error_description": {"type": "string", "maxLength": 300},
            },
            "additionalProperties": False,
        },
        "PushedRequest": {
            "type": "object",
            "required": ["request_uri", "expires_in"],
            "properties": {
                "request_uri": {
                    "type": "string",
                    "pattern": "^urn:ietf:params:oauth:request_uri:",
                },
                "expires_in": {"type": "integer", "minimum": 1, "maximum": 600},
            },
        },
        "TokenResponse": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in"],
            "properties": {
                "access_token": _STRING,
                "token_type": {"type": "string", "enum": ["Bearer", "DPoP"]},
                "expires_in": {"type": "integer"},
                "refresh_token": _STRING,
                "scope": _STRING,
                "authorization_details": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Introspection": {
            "type": "object",
            "required": ["active"],
            "properties": {
                "active": {"type": "boolean"},
                "client_id": _STRING,
                "scope": _STRING,
                "token_type": _STRING,
                "exp": {"type": "integer"},
                "iat": {"type": "integer"},
                "sub": _STRING,
                "aud": {"oneOf": [_STRING, {"type": "array", "items": _STRING}]},
                "iss": _STRING,
                "jti": _STRING,
                "cnf": {"type": "object", "properties": {"jkt": _STRING}},
                "authorization_details": {"type": "array", "items": {"type": "object"}},
            },
        },
        "ServerMetadata": {
            "type": "object",
            "required": ["issuer", "token_endpoint", "pushed_authorization_request_endpoint"],
            "properties": {"issuer": {"type": "string", "format": "uri"}},
        },
        "JwkSet": {
            "type": "object",
            "required": ["keys"],
            "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": _STRING, "alg": _STRING},
        },
        "ActionReport": {
            "type": "object",
            "required": ["report_id", "jti", "outcome", "at"],
            "properties": {
                "report_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"},
                "jti": {"type": "string", "minLength": 1, "maxLength": 256},
                "outcome": {"type": "string", "enum": ["allowed", "refused"]},
                "at": {"type": "integer", "minimum": 0},
                "type": {"type": "string", "maxLength": 128},
                "action": {"type": "object", "maxProperties": 32},
                "error": {"type": "string", "maxLength": 64},
                "reason": {"type": "string", "maxLength": 300},
                "resource": {"type": "string", "maxLength": 2048},
            },
            "additionalProperties": False,
        },
    }


def _responses() -> dict[str, Any]:
    error = _ref("OAuthError")
    retry_after = {"Retry-After": {"schema": {"type": "integer"}}}
    return {
        "BadRequest": _json_body("The request was refused (RFC 6749 5.2).", error),
        "Unauthorized": _json_body(
            "Client authentication failed: invalid_client (RFC 6749 5.2).",
            error,
            headers={"WWW-Authenticate": {"required": True, "schema": _STRING}},
        ),
        "Forbidden": _json_body("Authenticated, but not allowed here.", error),
        "TooLarge": _json_body("The body is larger than max_body_bytes (RFC 9126 2.3).", error),
        "TooManyRequests": _json_body("Rate limited (RFC 6585 4).", error, headers=retry_after),
        "Unavailable": _json_body(
            "Busy, or the database cannot be reached: temporarily_unavailable.",
            error,
            headers=retry_after,
        ),
    }


def _security_schemes(settings: Settings) -> dict[str, Any]:
    return {
        "clientSecretBasic": {
            "type": "http",
            "scheme": "basic",
            "description": "client_secret_basic (RFC 6749 2.3.1): client_id and secret, each "
            "form-urlencoded (appendix B), as HTTP Basic credentials.",
        },
        # OpenAPI has no scheme for credentials in a form body; the server metadata says how
        # assertions are made (algorithms, audience), so the scheme points there.
        "privateKeyJwt": {
            "type": "openIdConnect",
            "openIdConnectUrl": settings.endpoint("/.well-known/oauth-authorization-server"),
            "description": "private_key_jwt (RFC 7523 2.2): client_assertion_type="
            f"{JWT_BEARER} and client_assertion=<JWT signed by the client's key> in the "
            "form body. iss = sub = client_id, aud = the issuer, exp, single-use jti.",
        },
        "dpop": {
            "type": "apiKey",
            "in": "header",
            "name": "DPoP",
            "description": "A DPoP proof (RFC 9449 4): binds the code (at /par) or the "
            "access token (at /token) to the client's key.",
        },
    }


#: Refusals ``grantline serve`` makes before routing (``grantline.web.limits``): any operation
#: may get them, always as JSON.
_TRANSPORT_REFUSALS = {
    "400": "The request is not valid HTTP/1.1.",
    "408": "The request head or body arrived too slowly.",
    "414": "The request target is longer than the server reads.",
    "431": "Too many or too large header fields.",
}


def _with_transport_refusals(paths: dict[str, Any]) -> dict[str, Any]:
    for item in paths.values():
        for operation in item.values():
            responses = operation["responses"]
            for status, description in _TRANSPORT_REFUSALS.items():
                documented = responses.setdefault(
                    status, _json_body(description, _ref("OAuthError"))
                )
                content = documented.get("content")
                if content is not None and _JSON not in content:
                    content[_JSON] = {"schema": _ref("OAuthError")}
    return paths


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The whole document for this server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Grantline",
            "version": "1",
            "description": "An OAuth 2.0 authorization server built around Pushed "
            "Authorization Requests (RFC 9126). Back-channel errors are RFC 6749 5.2 JSON "
            "objects; the pages a person sees show errors that must not be redirected.",
        },
        "servers": [{"url": settings.issuer}],
        "paths": _with_transport_refusals(_paths()),
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "securitySchemes": _security_schemes(settings),
        },
    }


async def openapi(request: Request) -> Response:
    """GET /openapi.json."""
    document = openapi_document(context_of(request).settings)
    return json_response(document, headers={"Cache-Control": "public, max-age=300"})

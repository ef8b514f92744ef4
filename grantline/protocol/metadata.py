"""Authorization server metadata (RFC 8414), derived from settings and never written by hand."""

from __future__ import annotations

from typing import Any

from grantline.models import AUTH_METHODS
from grantline.protocol.dpop import DPOP_ALGS
from grantline.protocol.jose import CLIENT_SIGNING_ALGS
from grantline.protocol.pkce import SUPPORTED_METHODS
from grantline.settings import Settings

__all__ = ["server_metadata"]


def server_metadata(settings: Settings) -> dict[str, Any]:
    """The document served at ``/.well-known/oauth-authorization-server``."""
    # FAPI 2.0 5.3.2.1: clients authenticate with private_key_jwt (or mTLS, not offered here).
    auth_methods = ["private_key_jwt"] if settings.fapi2 else list(AUTH_METHODS)
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": settings.endpoint("/authorize"),
        "token_endpoint": settings.endpoint("/token"),
        "pushed_authorization_request_endpoint": settings.endpoint("/par"),
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests,
        "jwks_uri": settings.endpoint("/jwks"),
        "scopes_supported": sorted(settings.scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint": settings.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": [m for m in auth_methods if m != "none"],
        "revocation_endpoint": settings.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "authorization_details_types_supported": sorted(settings.authorization_details_types),
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "request_object_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "require_signed_request_object": False,
        "code_challenge_methods_supported": list(SUPPORTED_METHODS),
        "authorization_response_iss_parameter_supported": True,
        # RFC 9101 request objects are accepted at the PAR endpoint (RFC 9126 section 3).
        "request_parameter_supported": True,
    }

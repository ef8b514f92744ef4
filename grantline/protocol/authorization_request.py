"""The authorization request validator shared by the PAR and authorization endpoints.

RFC 9126 section 2.1: the PAR endpoint "MUST process the request" with the same rules as the
authorization endpoint. Differences between the two are explicit arguments here, not copies.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from grantline.errors import InvalidRequest, RequestNotSupported, UnsupportedResponseType
from grantline.models import AuthorizationRequest, Client
from grantline.protocol import pkce
from grantline.protocol.rar import (
    DetailTypes,
    parse_authorization_details,
    validate_authorization_details,
)
from grantline.protocol.redirect_uri import resolve_redirect_uri
from grantline.protocol.resource import parse_resources
from grantline.protocol.scope import parse_scope

__all__ = ["MAX_STATE_LENGTH", "validate_authorization_request"]

MAX_STATE_LENGTH = 2048
#: RFC 9449 10: ``dpop_jkt`` is an RFC 7638 SHA-256 thumbprint, 43 base64url characters.
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


def validate_authorization_request(
    params: Mapping[str, str],
    client: Client,
    *,
    known_scopes: Collection[str],
    detail_types: DetailTypes,
    pushed: bool,
) -> AuthorizationRequest:
    """Validate an authorization request for ``client``.

    ``pushed`` is true at the PAR endpoint, where ``request_uri`` is forbidden (RFC 9126 2.1).
    The redirect_uri is checked first: its errors must never be redirected (RFC 6749 4.1.2.1);
    everything after it may be reported to the redirect_uri it returns.
    """
    if pushed and "request_uri" in params:
        raise InvalidRequest("request_uri must not be sent to the PAR endpoint (RFC 9126 2.1).")
    redirect_uri = resolve_redirect_uri(params.get("redirect_uri"), client.redirect_uris)
    if "request" in params:
        raise RequestNotSupported("Request objects (the request parameter) are not supported.")
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required.")
    if response_type != "code":
        raise UnsupportedResponseType()
    response_mode = params.get("response_mode")
    if response_mode is not None and response_mode != "query":
        raise InvalidRequest("Only response_mode=query is supported.")
    scopes = parse_scope(params.get("scope"), known_scopes, client.scopes)
    details = parse_authorization_details(params.get("authorization_details"))
    validate_authorization_details(details, detail_types, client.authorization_details_types)
    resources = parse_resources(params.get("resource"), client.resources)
    dpop_jkt = params.get("dpop_jkt")
    if dpop_jkt is not None and not _JKT.fullmatch(dpop_jkt):
        raise InvalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint.")
    challenge, method = pkce.validate_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise InvalidRequest(f"state is longer than {MAX_STATE_LENGTH} characters.")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        code_challenge=challenge,
        code_challenge_method=method,
        state=state,
        response_type=response_type,
        authorization_details=details,
        resources=resources,
        dpop_jkt=dpop_jkt,
    )

"""The protocol error family: one class per RFC error code.

Every refusal Grantline makes is one of these. The class fixes the wire-level ``error`` code and
HTTP status; ``description`` is the human sentence that goes on the wire; ``detail`` is for logs
and the audit trail and never reaches the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

__all__ = [
    "InvalidAuthorizationDetails",
    "InvalidClient",
    "InvalidDpopProof",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidRequestObject",
    "InvalidRequestUri",
    "InvalidScope",
    "InvalidTarget",
    "OAuthError",
    "PageOnlyInvalidRequest",
    "RequestNotSupported",
    "ServerError",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UseDpopNonce",
]


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OAuthError(Exception):
    """Base of every protocol error; subclasses pin ``error`` and ``status_code``."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400
    default_description: ClassVar[str] = "The request is invalid."
    #: Whether the authorization endpoint may report this error by redirecting to a
    #: redirect_uri it has already validated (RFC 6749 section 4.1.2.1).
    redirectable: ClassVar[bool] = True

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # Descriptions may quote what the client sent; bound them so that neither the response
        # nor the audit trail can be used to store or reflect large attacker-chosen text.
        self.description = _bounded(description or self.default_description, 300)
        self.detail = _bounded(detail or self.description, 300)
        self.http_status = status_code or self.status_code
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.description)

    def body(self) -> dict[str, str]:
        """The RFC 6749 section 5.2 error object."""
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    """RFC 6749 5.2: "The request is missing a required parameter, includes an unsupported
    parameter value (other than grant type), repeats a parameter, ... or is otherwise malformed."
    """


class InvalidClient(OAuthError):
    """RFC 6749 5.2: "Client authentication failed (e.g., unknown client, no client
    authentication included, or unsupported authentication method)." """

    error = "invalid_client"
    status_code = 401
    default_description = "Client authentication failed."
    redirectable = False

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # RFC 9110 15.5.2: a 401 always carries a challenge, whatever the client tried.
        challenge = {"WWW-Authenticate": 'Basic realm="grantline", charset="UTF-8"'}
        super().__init__(
            description,
            detail=detail,
            status_code=status_code,
            headers={**challenge, **(headers or {})},
        )


class InvalidGrant(OAuthError):
    """RFC 6749 5.2: "The provided authorization grant ... or refresh token is invalid, expired,
    revoked, does not match the redirection URI used in the authorization request, or was issued
    to another client." """

    error = "invalid_grant"
    default_description = "The grant is invalid, expired, revoked or was issued to another client."


class UnauthorizedClient(OAuthError):
    """RFC 6749 5.2: "The authenticated client is not authorized to use this authorization grant
    type." """

    error = "unauthorized_client"
    default_description = "The client is not authorized to use this grant type."


class UnsupportedGrantType(OAuthError):
    """RFC 6749 5.2: "The authorization grant type is not supported by the authorization
    server." """

    error = "unsupported_grant_type"
    default_description = "The grant type is not supported."


class InvalidScope(OAuthError):
    """RFC 6749 4.1.2.1: "The requested scope is invalid, unknown, or malformed." """

    error = "invalid_scope"
    default_description = "The requested scope is invalid, unknown, or not allowed."


class UnsupportedResponseType(OAuthError):
    """RFC 6749 4.1.2.1: "The authorization server does not support obtaining an authorization
    code using this method." """

    error = "unsupported_response_type"
    default_description = "Only response_type=code is supported."


class InvalidRequestUri(OAuthError):
    """RFC 9101 6.3 / RFC 9126 4: the ``request_uri`` is unknown, expired, already used or
    was pushed by another client. Never redirected: the stored redirect_uri may belong to a
    different client than the one in the browser."""

    error = "invalid_request_uri"
    default_description = "The request_uri is unknown, expired, already used or not yours."
    redirectable = False


class RequestNotSupported(OAuthError):
    """RFC 9101 6.3: "The OP does not support use of the request parameter." """

    error = "request_not_supported"
    default_description = "The request parameter is not supported."


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 section 5: "The AS MUST refuse to process any unknown authorization details
    type or authorization details not conforming to the respective type definition" with
    ``invalid_authorization_details``."""

    error = "invalid_authorization_details"
    default_description = "The authorization_details parameter is invalid."


class InvalidTarget(OAuthError):
    """RFC 8707 section 2: "The requested resource is invalid, missing, unknown, or
    malformed." """

    error = "invalid_target"
    default_description = "The requested resource is invalid or not allowed."


class InvalidRequestObject(OAuthError):
    """RFC 9101 6.3: "The request parameter contains an invalid Request Object." """

    error = "invalid_request_object"
    default_description = "The request object is invalid."


class InvalidDpopProof(OAuthError):
    """RFC 9449 section 5: "The DPoP proof is invalid" (missing, malformed, wrong key,
    replayed, or for another request)."""

    error = "invalid_dpop_proof"
    default_description = "The DPoP proof is invalid."


class UseDpopNonce(OAuthError):
    """RFC 9449 section 8: the proof must carry the nonce the server provides in the
    ``DPoP-Nonce`` header."""

    error = "use_dpop_nonce"
    default_description = "Authorization server requires nonce in DPoP proof."


class ServerError(OAuthError):
    """RFC 6749 4.1.2.1: "The authorization server encountered an unexpected condition." """

    error = "server_error"
    status_code = 500
    default_description = "The server encountered an unexpected condition."


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 4.1.2.1: "The authorization server is currently unable to handle the request due
    to a temporary overloading or maintenance of the server." """

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "The server is temporarily unable to handle the request."


class PageOnlyInvalidRequest(InvalidRequest):
    """An ``invalid_request`` that must be shown to the person, never redirected: the client or
    its redirect_uri could not be trusted (RFC 6749 4.1.2.1, RFC 9700 4.11)."""

    redirectable = False

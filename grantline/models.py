"""The records Grantline keeps. Plain data: no I/O, shared by protocol rules and storage.

Times are integer seconds since the epoch. Every single-use record carries ``expires_at`` and
``consumed_at`` so that lifetime and single use are properties of the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AUTH_METHODS",
    "AuditEvent",
    "AuthMethod",
    "AuthorizationCode",
    "AuthorizationRequest",
    "Client",
    "Grant",
    "Interaction",
    "Session",
    "SigningKey",
    "StoredRequest",
    "Token",
    "User",
]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
AUTH_METHODS: tuple[AuthMethod, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
)


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client and its policy (RFC 7591 client metadata names where they exist)."""

    client_id: str
    name: str
    auth_method: AuthMethod
    redirect_uris: tuple[str, ...]
    #: Scopes this client may request; empty means every scope the server knows.
    scopes: tuple[str, ...] = ()
    #: RFC 9126 section 6 ``require_pushed_authorization_requests``; None follows the server.
    require_par: bool | None = None
    #: Lifetime of this client's pushed requests; None follows the server.
    par_lifetime: int | None = None
    #: RFC 9396 section 10 ``authorization_details_types``; empty means every configured type.
    authorization_details_types: tuple[str, ...] = ()
    #: RFC 8707 resources this client may name; empty means none.
    resources: tuple[str, ...] = ()
    #: May introspect every token (a resource server), not only its own (RFC 7662 section 4).
    can_introspect: bool = False
    #: RFC 7591 ``jwks``: the client's public keys, for private_key_jwt and request objects.
    jwks: dict[str, Any] | None = None
    #: RFC 7591 ``jwks_uri``: where to fetch them instead (cached, refetched on unknown kid).
    jwks_uri: str | None = None
    #: RFC 9101 10.5 ``require_signed_request_object``.
    require_signed_request_object: bool = False
    #: RFC 9449 5.2 ``dpop_bound_access_tokens``: every token request must carry a DPoP proof.
    dpop_bound_access_tokens: bool = False
    secret_digest: str | None = None
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    username: str
    password_hash: str
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request (RFC 6749 4.1.1 + RFC 7636 4.3)."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    code_challenge_method: str
    state: str | None = None
    response_type: str = "code"
    #: RFC 9396 items, validated against their types.
    authorization_details: tuple[dict[str, Any], ...] = ()
    #: RFC 8707 resource indicators.
    resources: tuple[str, ...] = ()
    #: RFC 9449 10: the key (its RFC 7638 thumbprint) the code must later be redeemed with.
    dpop_jkt: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dpop_jkt": self.dpop_jkt,
            "authorization_details": list(self.authorization_details),
            "resources": list(self.resources),
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scopes": list(self.scopes),
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
            "state": self.state,
            "response_type": self.response_type,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(
            client_id=data["client_id"],
            redirect_uri=data["redirect_uri"],
            scopes=tuple(data["scopes"]),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            state=data.get("state"),
            response_type=data.get("response_type", "code"),
            authorization_details=tuple(data.get("authorization_details", ())),
            resources=tuple(data.get("resources", ())),
            dpop_jkt=data.get("dpop_jkt"),
        )


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """An authorization request kept server-side: pushed (RFC 9126) or, where the policy allows
    plain requests, received on the front channel.

    ``request_id`` is the keyed digest of the request_uri's random part, never the reference.
    """

    request_id: str
    client_id: str
    request: AuthorizationRequest
    #: The parameters exactly as pushed, to detect front-channel substitution.
    raw_params: dict[str, str]
    pushed: bool
    created_at: int
    expires_at: int
    first_presented_at: int | None = None
    consumed_at: int | None = None
    #: Digest of the browser that first presented it; no other browser may (RFC 9126 4).
    presented_browser: str | None = None

    def is_presentable(self, now: int) -> bool:
        """Usable at the authorization endpoint: not consumed, not expired (RFC 9126 7.1)."""
        return self.consumed_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Interaction:
    """One person's pass through login and consent for one stored request.

    Bound to the browser that started it; lives ``interaction_lifetime`` seconds from the first
    presentation, independently of the pushed request's short lifetime.
    """

    interaction_id: str
    request_id: str
    client_id: str
    browser_digest: str
    created_at: int
    expires_at: int
    user_id: str | None = None
    consent_digest: str | None = None
    completed_at: int | None = None
    failed_logins: int = 0

    def is_open(self, now: int) -> bool:
        return self.completed_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    user_id: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Grant:
    """What a person approved for one client; codes and tokens hang off it."""

    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    request_id: str
    created_at: int
    revoked_at: int | None = None
    #: The items the person approved; declined ones never appear here.
    authorization_details: tuple[dict[str, Any], ...] = ()
    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_digest: str
    grant_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    created_at: int
    expires_at: int
    consumed_at: int | None = None
    dpop_jkt: str | None = None
    #: RFC 6749 4.1.3: if the authorization request named its redirect_uri, the token request
    #: must repeat it.
    redirect_uri_sent: bool = True


TokenKind = Literal["access_token", "refresh_token"]


@dataclass(frozen=True, slots=True)
class Token:
    token_digest: str
    kind: TokenKind
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int
    #: For refresh tokens: set when rotated; presenting it again is reuse (RFC 9700 4.14.2).
    consumed_at: int | None = None
    revoked_at: int | None = None
    #: RFC 8707 / RFC 9068 ``aud`` of an access token; for refresh tokens, what may be asked.
    audience: tuple[str, ...] = ()
    authorization_details: tuple[dict[str, Any], ...] = ()
    #: The JWT ``jti`` of an access token, for the audit trail.
    jti: str | None = None
    #: RFC 9449: thumbprint of the key this token is bound to (``cnf.jkt``), if any.
    jkt: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the audit trail; ``type`` is one of ``grantline.audit.events.EVENT_TYPES``."""

    type: str
    at: int
    client_id: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    grant_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private JWK in the database. ``retired_at`` is when it stops being published: after a
    rotation the old key keeps verifying until every token it signed has expired."""

    kid: str
    alg: str
    private_jwk: str
    created_at: int
    retired_at: int | None = None

    @property
    def active(self) -> bool:
        return self.retired_at is None

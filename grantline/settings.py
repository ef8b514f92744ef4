"""Every server option, typed, with its default and the RFC it comes from.

The instance's ``grantline.toml`` overrides these; discovery metadata is derived from them
(``grantline.protocol.metadata``), never written by hand.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from grantline.audit.redaction import parse_rule
from grantline.ratelimit.config import RateLimitSettings

__all__ = [
    "PAR_LIFETIME_CAP",
    "SIGNING_ALGS",
    "AuthorizationDetailType",
    "Settings",
    "is_loopback_host",
]

#: RFC 9068 access token signing algorithms (never ``none`` or HMAC); Ed25519 is EdDSA under its
#: RFC 9864 fully-specified name.
SIGNING_ALGS = ("ES256", "Ed25519", "RS256")


@dataclass(frozen=True, slots=True)
class AuthorizationDetailType:
    """One RFC 9396 authorization details type, as the deployer declares it."""

    description: str
    #: JSON Schema (Draft 2020-12) that every item of this type must satisfy.
    schema: dict[str, Any]
    #: Jinja2 template rendering one item (its fields are the variables) as a sentence.
    template: str
    #: Audit-trail redaction: dotted field path -> ``keep``, ``drop``, ``hash`` or ``mask:N``
    #: (``grantline.audit.redaction``).
    audit: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path, rule in self.audit.items():
            try:
                parse_rule(rule)
            except ValueError as exc:
                raise ValueError(f"audit.{path}: {exc}") from None


#: RFC 9126 section 2.2 leaves the lifetime to the server; a pushed request that lives for
#: minutes is a stale authority waiting to be used, so no configuration may exceed this.
PAR_LIFETIME_CAP = 600

#: RFC 9700 4.2.1 asks for short-lived codes; 60 s is the OAuth 2.1 recommendation.
CODE_LIFETIME_CAP = 60

DEFAULT_SCOPES: dict[str, str] = {
    "inbox.read": "Read messages in your inbox",
    "invoices.pay": "Pay invoices on your behalf",
    "deployments.write": "Deploy services on your behalf",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Server-wide configuration. Per-client policy lives in client metadata."""

    #: RFC 8414 section 2 ``issuer``; also the ``iss`` of RFC 9207 authorization responses.
    issuer: str
    #: SQLAlchemy-style URL of the database; ``sqlite:///`` paths are relative to the data dir.
    database_url: str
    #: Key for the keyed digests of stored bearer secrets and for CSRF tokens. Shared by every
    #: node of a deployment; changing it invalidates every stored secret.
    secret_key: bytes
    #: RFC 9126 section 5 ``require_pushed_authorization_requests``: when true, the
    #: authorization endpoint accepts only request_uri values from the PAR endpoint.
    require_pushed_authorization_requests: bool = True
    #: RFC 9126 section 2.2 ``expires_in`` of a pushed request unless the client overrides it.
    par_lifetime: int = 60
    #: Seconds a person has, after first presenting a request_uri, to sign in and decide.
    interaction_lifetime: int = 600
    #: RFC 6749 4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED";
    #: RFC 9700 and OAuth 2.1 want far less. Capped at CODE_LIFETIME_CAP.
    code_lifetime: int = 60
    access_token_lifetime: int = 600
    refresh_token_lifetime: int = 14 * 24 * 3600
    session_lifetime: int = 12 * 3600
    #: Scopes this server knows, with the sentence the consent page shows for each.
    scopes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SCOPES))
    #: Upper bounds for request bodies (RFC 9126 2.3 answers 413 above them) and query strings.
    max_body_bytes: int = 64 * 1024
    max_query_bytes: int = 8 * 1024
    #: RFC 9396 types this server accepts in ``authorization_details``.
    authorization_details_types: dict[str, AuthorizationDetailType] = field(default_factory=dict)
    #: RFC 9068 2.1: JWT access tokens are signed with this algorithm.
    access_token_signing_alg: str = "ES256"
    #: RFC 9068 3: the ``aud`` of a token requested without ``resource``; the issuer if unset.
    default_resource: str | None = None
    #: ``"fapi2"`` turns on the FAPI 2.0 Security Profile's server requirements (PAR, PKCE S256,
    #: private_key_jwt only, DPoP-bound access tokens, assertion ``aud`` = issuer only).
    profile: str | None = None
    #: RFC 9449 section 8: require a server-provided nonce in every DPoP proof.
    dpop_nonce_required: bool = False
    #: RFC 9449 11.1: how far a proof's ``iat`` may lie from the server's clock, in seconds.
    dpop_proof_window: int = 300
    #: Client assertions and request objects may not live longer than this (RFC 7523 3, FAPI).
    max_jwt_lifetime: int = 3600
    #: Days after which audit event bodies are dropped (their digests keep the chain
    #: verifiable); 0 keeps them for ever. Applied by ``grantline db prune``.
    audit_retention_days: int = 0
    #: Seconds between signed checkpoints of the audit chain written by ``grantline serve``;
    #: 0 turns them off (``grantline audit checkpoint`` still writes one on demand).
    audit_checkpoint_interval: int = 3600
    #: Request budgets per client and per address (RFC 6585 429), sign-in throttling, and
    #: where processes share their counts (``[rate_limits]``, ``rate_limit_url``); see
    #: ``grantline.ratelimit.config``.
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    #: Requests one worker process handles at once, and starts from one batch of requests the
    #: event loop found ready together once the last was that large (health checks excepted);
    #: 0: no bound.
    max_concurrent_requests: int = 64
    #: How long, in milliseconds, a request past that bound waits for a slot before it is
    #: answered 503 with Retry-After (``grantline.ratelimit.admission``).
    admission_wait_ms: int = 500
    #: Addresses (or networks) of TLS-terminating proxies whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` ``grantline serve`` believes; from anyone else they are ignored,
    #: so a client cannot pick the address its rate limits are counted against.
    trusted_proxies: tuple[str, ...] = ()
    #: Enables /dev/callback, a page that shows the code to a person trying the server by hand.
    dev_mode: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.par_lifetime <= PAR_LIFETIME_CAP:
            raise ValueError(f"par_lifetime must be between 1 and {PAR_LIFETIME_CAP} seconds")
        if not 1 <= self.code_lifetime <= CODE_LIFETIME_CAP:
            raise ValueError(f"code_lifetime must be between 1 and {CODE_LIFETIME_CAP} seconds")
        if self.access_token_signing_alg not in SIGNING_ALGS:
            raise ValueError(f"access_token_signing_alg must be one of {', '.join(SIGNING_ALGS)}")
        if self.profile not in (None, "fapi2"):
            raise ValueError('profile must be "fapi2" or unset')
        if self.fapi2 and not self.require_pushed_authorization_requests:
            raise ValueError("the fapi2 profile requires require_pushed_authorization_requests")
        if self.audit_retention_days < 0 or self.audit_checkpoint_interval < 0:
            raise ValueError("audit_retention_days and audit_checkpoint_interval must be >= 0")
        if self.max_concurrent_requests < 0 or self.admission_wait_ms < 0:
            raise ValueError("max_concurrent_requests and admission_wait_ms must be >= 0")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {proxy!r} is not an IP address or network"
                ) from None
        if len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 bytes")
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("issuer must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("issuer must not have a query or fragment (RFC 8414 section 2)")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("issuer must use https outside loopback development (RFC 8414 2)")

    @property
    def secure_cookies(self) -> bool:
        """Cookies get ``Secure`` whenever the issuer is served over HTTPS."""
        return self.issuer.startswith("https://")

    @property
    def fapi2(self) -> bool:
        return self.profile == "fapi2"

    @property
    def default_audience(self) -> str:
        return self.default_resource or self.issuer

    def endpoint(self, path: str) -> str:
        """Absolute URL of one of this server's endpoints."""
        return self.issuer.rstrip("/") + path


def is_loopback_host(host: str) -> bool:
    """True for the host names and addresses of the local machine."""
    return host in ("localhost", "::1") or host.startswith("127.")

"""``TokenVerifier``: is the access token on this request good for this resource?

Two ways to verify: ``mode="jwt"`` checks the RFC 9068 JWT locally against the issuer's
published keys; ``mode="introspection"`` asks the authorization server (RFC 7662), which also
sees revocations at once. Either way the token must be for this resource (``aud``), unexpired,
and, when bound to a key (``cnf.jkt``), presented with the ``DPoP`` scheme and a fresh proof
of that key for this very request (RFC 9449 section 7).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import httpx

from grantline.errors import InvalidDpopProof as ProtocolDpopFailure
from grantline.protocol.dpop import DPOP_ALGS, Proof, check_proof
from grantline.protocol.jose import JoseFailure, read_header, verify_compact
from grantline.rs.claims import VerifiedToken, token_from_claims
from grantline.rs.credentials import Presented, presented_credentials
from grantline.rs.discovery import AuthorizationServer
from grantline.rs.errors import (
    InvalidDpopProof,
    InvalidToken,
    ResourceError,
    Scheme,
    www_authenticate,
)
from grantline.rs.introspection import introspect
from grantline.rs.jwks import IssuerKeys
from grantline.rs.replay import ProofReplayCache
from grantline.rs.transport import basic_authorization, new_http_client

__all__ = ["ACCESS_TOKEN_ALGS", "ACCESS_TOKEN_TYPES", "Mode", "TokenVerifier"]

Mode = Literal["jwt", "introspection"]

#: What Grantline signs access tokens with (``access_token_signing_alg``).
ACCESS_TOKEN_ALGS: tuple[str, ...] = ("ES256", "Ed25519", "RS256")
#: Asymmetric algorithms only: ``none`` proves nothing, and an HMAC "secret" would be the
#: issuer's public key, which anyone can fetch.
_ASYMMETRIC = frozenset(
    {"ES256", "ES384", "ES512", "EdDSA", "Ed25519", "RS256", "RS384", "RS512"}
    | {"PS256", "PS384", "PS512"}
)
#: RFC 9068 4: "verify that the typ header value is at+jwt or application/at+jwt".
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


class TokenVerifier:
    """Verifies access tokens for one resource of one issuer. One instance per process; it
    keeps the issuer's keys and the DPoP replay cache."""

    def __init__(
        self,
        *,
        issuer: str,
        resource: str,
        mode: Mode = "jwt",
        client_id: str | None = None,
        client_secret: str | None = None,
        algorithms: Sequence[str] = ACCESS_TOKEN_ALGS,
        dpop_algorithms: Sequence[str] = DPOP_ALGS,
        require_dpop: bool = False,
        leeway: int = 30,
        dpop_window: int = 300,
        jwks_uri: str | None = None,
        introspection_endpoint: str | None = None,
        jwks_ttl: float = 300.0,
        jwks_refetch_interval: float = 10.0,
        replay_capacity: int = 100_000,
        realm: str | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("jwt", "introspection"):
            raise ValueError('mode must be "jwt" or "introspection"')
        for alg in (*algorithms, *dpop_algorithms):
            if alg not in _ASYMMETRIC:
                raise ValueError(f"{alg!r} is not an asymmetric signature algorithm")
        unknown_dpop = set(dpop_algorithms) - set(DPOP_ALGS)
        if unknown_dpop:
            raise ValueError(f"DPoP proofs cannot be checked with {sorted(unknown_dpop)}")
        if mode == "introspection" and not (client_id and client_secret):
            raise ValueError("introspection needs the resource server's client_id and secret")
        self.issuer = issuer
        self.resource = resource
        self.mode: Mode = mode
        self.algorithms = tuple(algorithms)
        self.dpop_algorithms = tuple(dpop_algorithms)
        self.require_dpop = require_dpop
        self.leeway = leeway
        self.dpop_window = dpop_window
        self.realm = realm
        self._clock = clock
        self._owns_http = http is None
        self._http = http or new_http_client()
        self._server = AuthorizationServer(
            issuer,
            self._http,
            jwks_uri=jwks_uri,
            introspection_endpoint=introspection_endpoint,
            monotonic=monotonic,
        )
        self.keys = IssuerKeys(
            self._server,
            self._http,
            ttl=jwks_ttl,
            refetch_interval=jwks_refetch_interval,
            monotonic=monotonic,
        )
        self.replay_cache = ProofReplayCache(replay_capacity)
        self._authorization = (
            basic_authorization(client_id, client_secret) if client_id and client_secret else None
        )

    @property
    def schemes(self) -> tuple[Scheme, ...]:
        return ("DPoP",) if self.require_dpop else ("Bearer", "DPoP")

    def challenge(self, error: ResourceError | None) -> str | None:
        """The ``WWW-Authenticate`` value to send with ``error`` (or with a plain 401)."""
        return www_authenticate(
            error, schemes=self.schemes, dpop_algs=self.dpop_algorithms, realm=self.realm
        )

    async def verify(
        self,
        *,
        authorization: Sequence[str],
        dpop: Sequence[str],
        method: str,
        url: str,
    ) -> VerifiedToken:
        """Verify the token a request carries, given every value of its ``Authorization``
        and ``DPoP`` headers and the method and absolute URL the client addressed (the
        proof's ``htm`` and ``htu``). Raises a ``ResourceError``."""
        presented = presented_credentials(authorization, dpop)
        if self.require_dpop and presented.scheme != "DPoP":
            raise InvalidToken("This resource accepts only DPoP-bound tokens.", scheme="DPoP")
        now = int(self._clock())
        # The proof is checked before the token: a bad proof costs the issuer nothing.
        proof = self._check_proof(presented, method, url, now)
        claims = await self._claims(presented.token, presented.scheme)
        try:
            token = token_from_claims(
                claims,
                issuer=self.issuer,
                resource=self.resource,
                now=now,
                leeway=self.leeway,
                jwt=self.mode == "jwt",
            )
        except InvalidToken as exc:
            exc.scheme = presented.scheme
            raise
        self._check_binding(presented, token, proof, now)
        return token

    def _check_proof(self, presented: Presented, method: str, url: str, now: int) -> Proof | None:
        if presented.proof is None:
            return None
        try:
            alg = read_header(presented.proof).get("alg")
        except JoseFailure as exc:
            raise InvalidDpopProof(f"DPoP proof: {exc}.") from None
        if alg not in self.dpop_algorithms:
            raise InvalidDpopProof(f"DPoP proof: alg {alg!r} is not accepted.")
        try:
            return check_proof(
                presented.proof,
                method=method,
                url=url,
                now=now,
                window=self.dpop_window,
                access_token=presented.token,
            )
        except ProtocolDpopFailure as exc:
            raise InvalidDpopProof(exc.description) from None

    def _check_binding(
        self, presented: Presented, token: VerifiedToken, proof: Proof | None, now: int
    ) -> None:
        if token.jkt is None:
            if presented.scheme == "DPoP":
                # RFC 9449 7.1: the DPoP scheme is for DPoP-bound tokens only.
                raise InvalidToken("The access token is not DPoP-bound; use Bearer.", scheme="DPoP")
            return
        if presented.scheme != "DPoP" or proof is None:
            # RFC 9449 7.2: a bound token sent as a bearer token is refused, or a stolen one
            # could be used without the key.
            raise InvalidToken(
                "The access token is DPoP-bound: present it with the DPoP scheme and a proof.",
                scheme="DPoP",
            )
        if not hmac.compare_digest(proof.jkt, token.jkt):
            raise InvalidDpopProof("The DPoP proof was made with another key than the token's.")
        # Remembered last, so that a proof refused for another reason is not spent.
        if not self.replay_cache.first_use(
            proof.jkt,
            proof.jti,
            iat=proof.iat,
            expires_at=proof.iat + self.dpop_window + 1,
            now=now,
        ):
            raise InvalidDpopProof("The DPoP proof was already used.")

    async def _claims(self, token: str, scheme: Scheme) -> Mapping[str, Any]:
        try:
            if self.mode == "introspection":
                assert self._authorization is not None
                endpoint = await self._server.introspection_endpoint()
                return await introspect(
                    self._http, endpoint, token, authorization=self._authorization
                )
            return await self._jwt_claims(token)
        except InvalidToken as exc:
            exc.scheme = scheme
            raise

    async def _jwt_claims(self, token: str) -> Mapping[str, Any]:
        try:
            header = read_header(token)
        except JoseFailure:
            raise InvalidToken("The access token is not a JWT.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken(f"The access token's alg {alg!r} is not accepted.")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("The access token's typ is not at+jwt (RFC 9068).")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("The access token's kid is malformed.")
        key = await self.keys.key_for(kid, alg)
        try:
            _, claims = verify_compact(token, key, [alg])
        except JoseFailure as exc:
            raise InvalidToken(f"The access token: {exc}.") from None
        return claims

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

"""A small OAuth 2.0 client written independently of Grantline, for the FAPI 2.0 features:
private_key_jwt (RFC 7523), signed request objects (RFC 9101) pushed with PAR (RFC 9126), DPoP
(RFC 9449) with server nonces, and PKCE S256 (RFC 7636).

It is built only on joserfc, httpx and the standard library and never imports ``grantline``
(a test checks this), so what it sends is what the RFCs say rather than what the server's own
code would produce. Every request gets a fresh client assertion, request object and DPoP proof;
a ``use_dpop_nonce`` answer is retried once, rebuilt anew, with the ``DPoP-Nonce`` it gave.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

__all__ = [
    "JWT_BEARER",
    "ClientKey",
    "IndependentClient",
    "Pkce",
    "discover",
    "jwk_thumbprint",
    "jwks_of",
]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REQUEST_OBJECT_TYP = "oauth-authz-req+jwt"
DPOP_TYP = "dpop+jwt"
#: Lifetime of the assertions and request objects this client signs, in seconds.
JWT_LIFETIME = 60
#: RFC 7638 3.2: the required members of each key type, the only ones hashed.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256), computed by hand from the public members."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[str(jwk["kty"])]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class ClientKey:
    """A private signing key with its JWS algorithm and key id."""

    key: ECKey | OKPKey
    alg: str
    kid: str

    @classmethod
    def es256(cls, kid: str | None = None) -> ClientKey:
        return cls(ECKey.generate_key("P-256"), "ES256", kid or secrets.token_urlsafe(8))

    @classmethod
    def ed25519(cls, kid: str | None = None) -> ClientKey:
        # "Ed25519" is the RFC 9864 fully-specified name ("EdDSA" is deprecated).
        return cls(OKPKey.generate_key("Ed25519"), "Ed25519", kid or secrets.token_urlsafe(8))

    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(self.key.as_dict(private=False))
        assert "d" not in jwk
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def thumbprint(self) -> str:
        return jwk_thumbprint(self.public_jwk())

    def sign(self, claims: Mapping[str, Any], header: Mapping[str, Any]) -> str:
        protected = {**header, "alg": self.alg}
        payload = json.dumps(dict(claims), separators=(",", ":")).encode("utf-8")
        return jws.serialize_compact(protected, payload, self.key, algorithms=[self.alg])


def jwks_of(*keys: ClientKey) -> dict[str, Any]:
    """The public JWK Set a client registers or serves at its jwks_uri."""
    return {"keys": [k.public_jwk() for k in keys]}


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)  # RFC 7636 4.1: 43 to 128 unreserved characters
        challenge = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        return cls(verifier, challenge)


def discover(http: httpx.Client, issuer: str) -> dict[str, Any]:
    """RFC 8414 metadata, whose issuer must be exactly the one we asked (RFC 8414 3.3)."""
    response = http.get(issuer.rstrip("/") + "/.well-known/oauth-authorization-server")
    response.raise_for_status()
    metadata: dict[str, Any] = response.json()
    if metadata.get("issuer") != issuer:
        raise ValueError(f"metadata names issuer {metadata.get('issuer')!r}, not {issuer!r}")
    return metadata


def error_of(response: httpx.Response) -> str | None:
    """The RFC 6749 5.2 ``error`` of a JSON error response, else None."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


Form = Mapping[str, str] | Callable[[], Mapping[str, str]]


class IndependentClient:
    """A confidential client using private_key_jwt, optionally with a DPoP key."""

    def __init__(
        self,
        http: httpx.Client,
        metadata: Mapping[str, Any],
        client_id: str,
        key: ClientKey,
        dpop_key: ClientKey | None = None,
    ) -> None:
        self.http = http
        self.metadata = dict(metadata)
        self.issuer: str = self.metadata["issuer"]
        self.client_id = client_id
        self.key = key
        self.dpop_key = dpop_key
        #: The last ``DPoP-Nonce`` the server sent, used in every following proof.
        self.nonce: str | None = None
        #: How many ``use_dpop_nonce`` challenges were answered by a retry.
        self.nonce_retries = 0

    # -- signed artefacts ------------------------------------------------------------------

    def client_assertion(self, *, key: ClientKey | None = None, **overrides: Any) -> str:
        """RFC 7523 3: iss = sub = client_id, aud = the issuer identifier, single-use jti;
        ``key`` signs in place of the client's own, ``overrides`` replace claims."""
        signer = key or self.key
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.issuer,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + JWT_LIFETIME,
            **overrides,
        }
        return signer.sign(claims, {"typ": "JWT", "kid": signer.kid})

    def request_object(
        self, params: Mapping[str, Any], *, key: ClientKey | None = None, kid: str | None = None
    ) -> str:
        """RFC 9101 request object carrying ``params``; JSON values (authorization_details)
        stay JSON. ``key`` and ``kid`` replace the client's own (to play an attacker)."""
        signer = key or self.key
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "aud": self.issuer,
            "client_id": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + JWT_LIFETIME,
            "jti": secrets.token_urlsafe(16),
            **params,
        }
        return signer.sign(claims, {"typ": REQUEST_OBJECT_TYP, "kid": kid or signer.kid})

    def dpop_proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        key: ClientKey | None = None,
    ) -> str:
        """RFC 9449 4.2 proof for one request, with the last nonce the server sent."""
        signer = key or self.dpop_key
        assert signer is not None, "this client has no DPoP key"
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        return signer.sign(claims, {"typ": DPOP_TYP, "jwk": signer.public_jwk()})

    # -- requests --------------------------------------------------------------------------

    def post(
        self,
        endpoint: str,
        form: Form,
        *,
        assertion: str | None = None,
        proof: str | None = None,
        dpop: bool = True,
    ) -> httpx.Response:
        """POST ``form`` to the metadata's ``endpoint`` with private_key_jwt and, if the client
        has a DPoP key, a proof. A given ``assertion`` or ``proof`` is sent as it is, and never
        retried; otherwise a ``use_dpop_nonce`` answer is retried once with everything built
        anew (form, assertion, proof), since each of them is single use."""
        url = str(self.metadata[endpoint])
        response = self._send(url, form, assertion, proof, dpop)
        challenged = error_of(response) == "use_dpop_nonce" and "dpop-nonce" in response.headers
        if challenged and assertion is None and proof is None:
            self.nonce_retries += 1
            response = self._send(url, form, None, None, dpop)
        return response

    def _send(
        self, url: str, form: Form, assertion: str | None, proof: str | None, dpop: bool
    ) -> httpx.Response:
        data = dict(form() if callable(form) else form)
        data["client_assertion_type"] = JWT_BEARER
        data["client_assertion"] = assertion or self.client_assertion()
        headers = {}
        if dpop and (proof is not None or self.dpop_key is not None):
            headers["DPoP"] = proof or self.dpop_proof("POST", url)
        response = self.http.post(url, data=data, headers=headers)
        self.nonce = response.headers.get("dpop-nonce", self.nonce)
        return response

    def authorization_params(
        self,
        *,
        redirect_uri: str,
        pkce: Pkce,
        state: str,
        scope: str | None = None,
        authorization_details: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The authorization request (RFC 6749 4.1.1, RFC 7636 4.3, RFC 9396 2)."""
        params: dict[str, Any] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
        }
        if scope is not None:
            params["scope"] = scope
        if authorization_details is not None:
            params["authorization_details"] = authorization_details
        return params

    def push(self, params: Mapping[str, Any], **kwargs: Any) -> httpx.Response:
        """RFC 9126 2.1 with RFC 9101: push ``params`` inside a request object, signed anew for
        every attempt; ``kwargs`` go to ``post``."""

        def form() -> dict[str, str]:
            return {"client_id": self.client_id, "request": self.request_object(params)}

        return self.post("pushed_authorization_request_endpoint", form, **kwargs)

    def authorization_url(self, request_uri: str) -> str:
        """RFC 9126 4: the front channel carries only client_id and request_uri."""
        query = urlencode({"client_id": self.client_id, "request_uri": request_uri})
        return f"{self.metadata['authorization_endpoint']}?{query}"

    def exchange(
        self, code: str, *, redirect_uri: str, verifier: str, **kwargs: Any
    ) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        return self.post("token_endpoint", form, **kwargs)

    def refresh(self, refresh_token: str, **kwargs: Any) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self.post("token_endpoint", form, **kwargs)

    def introspect(self, token: str, **kwargs: Any) -> httpx.Response:
        return self.post("introspection_endpoint", {"token": token}, dpop=False, **kwargs)

"""JOSE test helpers: client keys, private_key_jwt assertions, signed request objects and DPoP
proofs, built with joserfc exactly as a client would (and, for attacks, by hand).

Claims given as ``None`` are left out, so a test can drop a required claim by naming it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import warnings
from collections.abc import Mapping
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from grantline.models import AuditEvent
from grantline.protocol.client_assertion import JWT_BEARER
from grantline.storage.sql import SQLiteStore
from tests.helpers import ISSUER, Agent, FrozenClock, query_of

__all__ = [
    "JWT_BEARER",
    "AnyKey",
    "JwtAgent",
    "access_token_claims",
    "alg_for",
    "approve",
    "assertion_form",
    "b64url",
    "client_assertion",
    "dpop_proof",
    "ec_key",
    "events",
    "ed_key",
    "hs256_token",
    "jwks_of",
    "public_jwk",
    "request_object",
    "rsa_key",
    "sign",
    "thumbprint",
    "unsigned_token",
]

AnyKey = ECKey | OKPKey | RSAKey

TOKEN_URL = f"{ISSUER}/token"
PAR_URL = f"{ISSUER}/par"


# -- keys -----------------------------------------------------------------------------------


def ec_key(kid: str | None = None) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid} if kid else None)


def ed_key(kid: str | None = None) -> OKPKey:
    return OKPKey.generate_key("Ed25519", parameters={"kid": kid} if kid else None)


_RSA: dict[str | None, RSAKey] = {}


def rsa_key(kid: str | None = None) -> RSAKey:
    """RSA keys are slow to generate: one per kid for the whole session."""
    if kid not in _RSA:
        _RSA[kid] = RSAKey.generate_key(2048, parameters={"kid": kid} if kid else None)
    return _RSA[kid]


def public_jwk(key: AnyKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def jwks_of(*keys: AnyKey) -> dict[str, Any]:
    return {"keys": [public_jwk(key) for key in keys]}


def alg_for(key: AnyKey) -> str:
    if isinstance(key, ECKey):
        return "ES256"
    if isinstance(key, OKPKey):
        return "Ed25519"
    return "PS256"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638, computed here without joserfc: the required members, sorted, no whitespace."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
        "RSA": ("e", "kty", "n"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


# -- signing --------------------------------------------------------------------------------


def _claims(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {k: v for k, v in merged.items() if v is not None}


def sign(
    key: AnyKey,
    claims: Mapping[str, Any] | bytes,
    *,
    alg: str | None = None,
    header: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS over ``claims`` (or raw payload bytes). ``header`` members given as None
    are left out; ``typ`` is only set when asked for."""
    alg = alg or alg_for(key)
    protected = {"alg": alg, **({"kid": key.kid} if key.kid else {}), **(header or {})}
    protected = {k: v for k, v in protected.items() if v is not None}
    payload = claims if isinstance(claims, bytes) else json.dumps(dict(claims)).encode()
    with warnings.catch_warnings():
        # joserfc flags the RFC 9864-deprecated name "EdDSA"; clients still send it.
        warnings.simplefilter("ignore", SecurityWarning)
        return jws.serialize_compact(protected, payload, key, algorithms=[alg])


def unsigned_token(claims: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
    """``alg: none`` with an empty signature (RFC 7519 6.1)."""
    protected = {"alg": "none", **(header or {})}
    return ".".join(
        [b64url(json.dumps(protected).encode()), b64url(json.dumps(dict(claims)).encode()), ""]
    )


def hs256_token(
    secret: bytes, claims: Mapping[str, Any], header: Mapping[str, Any] | None = None
) -> str:
    """HS256 by hand: the classic attack uses a public key's bytes as the HMAC secret."""
    protected = {"alg": "HS256", **(header or {})}
    signing_input = ".".join(
        [b64url(json.dumps(protected).encode()), b64url(json.dumps(dict(claims)).encode())]
    )
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


# -- client assertions (RFC 7523) -----------------------------------------------------------


def client_assertion(
    key: AnyKey,
    client_id: str,
    now: int,
    *,
    alg: str | None = None,
    header: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> str:
    base = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
    }
    return sign(key, _claims(base, overrides), alg=alg, header=header)


def assertion_form(assertion: str, client_id: str | None = None) -> dict[str, str]:
    form = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    if client_id is not None:
        form["client_id"] = client_id
    return form


# -- request objects (RFC 9101) -------------------------------------------------------------


def request_object(
    key: AnyKey,
    client_id: str,
    params: Mapping[str, Any],
    now: int,
    *,
    alg: str | None = None,
    typ: str | None = "oauth-authz-req+jwt",
    header: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> str:
    base = {
        "iss": client_id,
        "aud": ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(12),
        "client_id": client_id,
        **params,
    }
    return sign(key, _claims(base, overrides), alg=alg, header={"typ": typ, **(header or {})})


# -- DPoP proofs (RFC 9449) -----------------------------------------------------------------


def dpop_proof(
    key: AnyKey,
    now: int,
    *,
    htm: Any = "POST",
    htu: Any = TOKEN_URL,
    alg: str | None = None,
    typ: str | None = "dpop+jwt",
    jwk: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> str:
    """A proof signed by ``key`` carrying ``jwk`` (by default the public half of ``key``)."""
    base = {"htm": htm, "htu": htu, "iat": now, "jti": secrets.token_urlsafe(12)}
    header = {"typ": typ, "jwk": dict(jwk) if jwk is not None else public_jwk(key), "kid": None}
    return sign(key, _claims(base, overrides), alg=alg, header=header)


# -- driving the flow -----------------------------------------------------------------------


async def events(store: SQLiteStore, type_: str, limit: int = 50) -> list[AuditEvent]:
    """The recent audit events of one type, oldest first."""
    async with store.reader() as tx:
        return [e for e in await tx.tail(limit) if e.type == type_]


async def access_token_claims(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """The claims of a JWT access token, verified with the keys the server publishes."""
    keys = KeySet.import_key_set((await http.get("/jwks")).json())
    return dict(jwt.decode(token, keys).claims)


async def approve(agent: Agent, request_uri: str) -> str:
    """Open the pushed request, sign in and approve; returns the code."""
    interaction = await agent.open(request_uri)
    await agent.login(interaction)
    response = await agent.decide(interaction)
    assert response.status_code == 303, response.text
    return query_of(response.headers["location"])["code"]


class JwtAgent(Agent):
    """An ``Agent`` that authenticates with private_key_jwt: a fresh assertion per request."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        key: AnyKey,
        clock: FrozenClock,
        client_id: str = "signer",
        *,
        aud: str = ISSUER,
    ) -> None:
        super().__init__(http, client_id, secret="")
        self.key = key
        self.clock = clock
        self.aud = aud

    def credentials(self) -> dict[str, str]:
        assertion = client_assertion(self.key, self.client_id, self.clock.now, aud=self.aud)
        return assertion_form(assertion, self.client_id)

    async def push_raw(self, data: Any, **kwargs: Any) -> httpx.Response:
        return await self.http.post("/par", data={**self.credentials(), **data}, **kwargs)

    async def token(self, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        return await self.http.post("/token", data={**self.credentials(), **data}, **kwargs)

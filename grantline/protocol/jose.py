"""Verifying JWS compact tokens from clients (assertions, request objects, DPoP proofs).

Signatures come from joserfc; this module only fixes the policy: asymmetric algorithms from an
allow-list (never ``none``, never HMAC, whose "secret" would be a public key), and a clear
reason when anything is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey, import_key
from joserfc.jws import JWSRegistry

__all__ = [
    "CLIENT_SIGNING_ALGS",
    "JoseFailure",
    "exceeds_depth",
    "number",
    "public_key_from_jwk",
    "read_header",
    "unverified_payload",
    "verify_compact",
]

#: ES256, EdDSA (also under its RFC 9864 name Ed25519) and PS256, as FAPI 2.0 allows.
CLIENT_SIGNING_ALGS: tuple[str, ...] = ("ES256", "EdDSA", "Ed25519", "PS256")
MAX_TOKEN_LENGTH = 16 * 1024
#: Deep enough for a request object carrying authorization_details (whose own bound is 16
#: levels); deeper JSON is refused before anything walks it recursively.
MAX_JSON_DEPTH = 20

AnyKey = ECKey | OKPKey | RSAKey


class _ClientTokens(JWSRegistry):
    """joserfc's limits, but room for a DPoP header carrying an RSA ``jwk`` (RSA-4096: about
    1 KiB of header, 683 bytes of signature)."""

    max_header_length = 4096
    max_signature_length = 2048


@lru_cache(maxsize=16)
def _registry(alg: str | None) -> JWSRegistry:
    return _ClientTokens(algorithms=None if alg is None else [alg])


class JoseFailure(ValueError):
    """A token that cannot be trusted; the message says why, for the error description."""


def read_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, unverified (to pick the key)."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise JoseFailure("not a compact JWS")
    try:
        header = jws.extract_compact(token.encode("ascii"), registry=_registry(None)).headers()
    except (JoseError, ValueError, UnicodeError):
        raise JoseFailure("not a compact JWS") from None
    except RecursionError:
        raise JoseFailure("the JWS header is nested too deeply") from None
    if not isinstance(header, dict):
        raise JoseFailure("the JWS header is not an object")
    if exceeds_depth(header, MAX_JSON_DEPTH):
        raise JoseFailure("the JWS header is nested too deeply")
    return header


def unverified_payload(token: str) -> Any:
    """The payload of a compact JWS as JSON, unverified: only for choosing what to check it
    against (which client, whether a nonce is missing), never for trusting it."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise JoseFailure("not a compact JWS")
    payload = token.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(payload.encode("ascii") + b"=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        raise JoseFailure("the payload is not base64url") from None
    return _json_value(raw, "payload")


def _json_value(raw: bytes | str, what: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        raise JoseFailure(f"the {what} is not JSON") from None
    except RecursionError:
        raise JoseFailure(f"the {what} is nested too deeply") from None
    if exceeds_depth(value, MAX_JSON_DEPTH):
        raise JoseFailure(f"the {what} is nested too deeply")
    return value


def exceeds_depth(value: Any, limit: int) -> bool:
    """True if arrays and objects nest more than ``limit`` levels; iterative, so it cannot
    itself run out of stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level >= limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def public_key_from_jwk(jwk: Any) -> AnyKey:
    """Import a public JWK; private members, symmetric keys and junk are refused."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in ("EC", "OKP", "RSA"):
        raise JoseFailure("the jwk is not an asymmetric public key")
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise JoseFailure("the jwk contains private key material")
    try:
        key = import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise JoseFailure("the jwk is not a valid public key") from None
    assert isinstance(key, (ECKey, OKPKey, RSAKey))
    return key


def verify_compact(
    token: str, key: AnyKey | KeySet, algorithms: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify the signature with ``key`` and return (header, claims)."""
    header = read_header(token)
    alg = header.get("alg")
    if alg not in algorithms:
        raise JoseFailure(f"alg {alg!r} is not allowed")
    if isinstance(key, KeySet):
        key = _pick(key, header.get("kid"))
    try:
        with warnings.catch_warnings():
            # RFC 9864 deprecates the name "EdDSA"; clients may still use it.
            warnings.simplefilter("ignore", SecurityWarning)
            verified = jws.deserialize_compact(
                token.encode("ascii"), key, registry=_registry(str(alg))
            )
    except (JoseError, ValueError, TypeError):
        raise JoseFailure("the signature does not verify") from None
    claims = _json_value(verified.payload, "payload")
    if not isinstance(claims, dict):
        raise JoseFailure("the payload is not a JSON object")
    try:
        # Lone surrogates (JSON "\ud800") survive parsing but cannot be stored or re-encoded.
        json.dumps(claims, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        raise JoseFailure("the payload contains text that is not valid Unicode") from None
    return header, claims


def _pick(keys: KeySet, kid: Any) -> AnyKey:
    candidates = [k for k in keys.keys if kid is None or k.kid == kid]
    if kid is None and len(keys.keys) != 1:
        raise JoseFailure("the JWS has no kid and the client has several keys")
    if not candidates:
        raise JoseFailure(f"no key with kid {kid!r}")
    key = candidates[0]
    assert isinstance(key, (ECKey, OKPKey, RSAKey))
    return key


def number(claims: Mapping[str, Any], name: str) -> int | None:
    """An integer NumericDate claim, or None when absent; anything else is refused."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JoseFailure(f"{name} is not a number")
    if not math.isfinite(value) or abs(value) > 2**53:
        raise JoseFailure(f"{name} is out of range")
    return int(value)

"""DPoP proofs (RFC 9449): checking one proof, and stateless server nonces."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from grantline.errors import InvalidDpopProof
from grantline.protocol.jose import (
    CLIENT_SIGNING_ALGS,
    JoseFailure,
    number,
    public_key_from_jwk,
    read_header,
    verify_compact,
)
from grantline.protocol.params import is_clean_value

__all__ = [
    "DPOP_ALGS",
    "DPOP_TYP",
    "Proof",
    "access_token_hash",
    "check_proof",
    "nonce_for",
    "nonce_valid",
    "normalize_htu",
]

DPOP_TYP = "dpop+jwt"
DPOP_ALGS: tuple[str, ...] = (*CLIENT_SIGNING_ALGS, "ES384", "RS256")
#: A proof from slightly in the future is tolerated (clock skew), but not more.
FUTURE_LEEWAY = 60
NONCE_PERIOD = 300


@dataclass(frozen=True, slots=True)
class Proof:
    jkt: str
    jti: str
    iat: int
    nonce: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """RFC 9449 4.2 ``ath``: base64url of the SHA-256 of the access token."""
    # A token that is not ASCII was never issued here; hashing it anyway keeps the comparison
    # a plain mismatch instead of an encoding error.
    return _b64(hashlib.sha256(access_token.encode("utf-8", "surrogatepass")).digest())


def normalize_htu(url: str) -> str:
    """Scheme and host lower-cased, default port dropped, query and fragment removed
    (RFC 9449 4.3: compare "without query and fragment parts")."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidDpopProof("DPoP proof: htu is not a valid URL.") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def check_proof(
    token: str,
    *,
    method: str,
    url: str,
    now: int,
    window: int,
    access_token: str | None = None,
) -> Proof:
    """RFC 9449 4.3: every check on one proof but replay and nonce, which need state."""
    try:
        header = read_header(token)
        if header.get("typ") != DPOP_TYP:
            raise JoseFailure(f"typ must be {DPOP_TYP}")
        key = public_key_from_jwk(header.get("jwk"))
        _, claims = verify_compact(token, key, DPOP_ALGS)
        iat = number(claims, "iat")
    except JoseFailure as exc:
        raise InvalidDpopProof(f"DPoP proof: {exc}.") from None
    if claims.get("htm") != method:
        raise InvalidDpopProof("DPoP proof: htm does not match the request method.")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
        raise InvalidDpopProof("DPoP proof: htu does not match the request URL.")
    if iat is None or iat < now - window or iat > now + FUTURE_LEEWAY:
        raise InvalidDpopProof("DPoP proof: iat is missing or outside the acceptable window.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256 or not is_clean_value(jti):
        raise InvalidDpopProof("DPoP proof: jti is required.")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise InvalidDpopProof("DPoP proof: ath does not match the access token.")
    nonce = claims.get("nonce")
    return Proof(
        jkt=key.thumbprint(),
        jti=jti,
        iat=iat,
        nonce=nonce if isinstance(nonce, str) else None,
    )


def nonce_for(secret: bytes, now: int, period: int = NONCE_PERIOD) -> str:
    """A nonce every node derives alike from the shared secret; it changes every ``period``."""
    window = str(now // period).encode("ascii")
    return _b64(hmac.new(secret, b"dpop-nonce\x00" + window, hashlib.sha256).digest()[:24])


def nonce_valid(secret: bytes, nonce: str | None, now: int, period: int = NONCE_PERIOD) -> bool:
    """The current and the previous nonce are accepted, so a rotation never fails a client
    that fetched its nonce a moment before."""
    # compare_digest refuses non-ASCII text; no issued nonce contains any.
    if nonce is None or not nonce.isascii():
        return False
    return any(
        hmac.compare_digest(nonce, nonce_for(secret, t, period)) for t in (now, now - period)
    )

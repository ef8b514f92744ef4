"""Hypothesis strategies for the property tests: hostile text, form bodies, JSON and JWTs.

Every parser's property is the same: it returns a value or raises the project's ``OAuthError``
family (``JoseFailure`` inside ``grantline.protocol.jose``, whose callers turn it into one),
never anything else, since anything else is a 500 on the wire.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey

from tests.jose_helpers import b64url, ec_key, public_jwk

__all__ = [
    "PROPERTY",
    "SIGNING_KEY",
    "compact_tokens",
    "form_bodies",
    "hostile_text",
    "json_values",
    "never_crashes",
    "signed_tokens",
    "uri_like",
]

T = TypeVar("T")

#: No example database (nothing is written into the working tree) and no deadline (CI shares
#: two cores); 200 examples per property keeps the whole set to a few seconds.
PROPERTY = settings(
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

#: Characters that have broken parsers before: controls, NUL, DEL, lone surrogates, bidi and
#: zero-width marks, the form and URI delimiters, and non-ASCII that some APIs refuse.
_NASTY = [
    "\x00",
    "\x1f",
    "\x7f",
    "\t",
    "\n",
    "\ud800",
    "\udfff",
    "\u202e",
    "\u200b",
    "\ufeff",
    "é",
    "\U0001f600",
    "%",
    "%00",
    "%ff",
    "%ED%A0%80",
    "%C3%A9",
    "+",
    "&",
    "=",
    ":",
    "#",
    "[",
    "]",
    "@",
    "\\",
    '"',
    "{",
    "}",
    " ",
    ".",
    "/",
    "?",
]


def hostile_text(max_size: int = 64) -> st.SearchStrategy[str]:
    """Arbitrary Unicode (surrogates included), or printable ASCII salted with nasty pieces."""
    pieces = st.one_of(st.sampled_from(_NASTY), st.text(string.printable, max_size=8))
    return st.one_of(
        st.text(st.characters(codec=None, exclude_categories=()), max_size=max_size),
        st.lists(pieces, max_size=max_size // 4).map("".join),
    )


def uri_like() -> st.SearchStrategy[str]:
    """Strings shaped like URIs, with broken hosts, ports, brackets, fragments and schemes."""
    scheme = st.sampled_from(["http", "https", "HTTP", "javascript", "urn", "x-app", "", "h t"])
    host = st.sampled_from(
        ["127.0.0.1", "[::1]", "[::1", "::1]", "[zz]", "localhost", "api.example", "", "a@b", "é"]
    )
    port = st.sampled_from(["", ":0", ":8080", ":65536", ":-1", ":x", ":"])
    tail = st.sampled_from(["", "/", "/cb", "/cb?x=1", "/cb#f", "#", "?", "/%zz", "/\x00"])
    built = st.tuples(scheme, host, port, tail).map(lambda p: f"{p[0]}://{p[1]}{p[2]}{p[3]}")
    return st.one_of(built, hostile_text())


def form_bodies() -> st.SearchStrategy[bytes]:
    """``application/x-www-form-urlencoded``-ish bytes: real pairs, broken escapes, repeats,
    separators without names, and raw non-ASCII bytes."""
    name = st.sampled_from(
        ["client_id", "scope", "resource", "state", "redirect_uri", "a", "", "%", "x%00"]
    )
    value = st.one_of(st.sampled_from(_NASTY), st.text(string.printable, max_size=12))
    pair = st.tuples(name, st.sampled_from(["=", "", "=="]), value).map("".join)
    text = st.lists(pair, max_size=12).map("&".join).map(lambda s: s.encode("utf-8", "replace"))
    return st.one_of(text, st.binary(max_size=200))


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text(16),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(hostile_text(8), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def _segment() -> st.SearchStrategy[str]:
    as_json = json_values().map(lambda v: b64url(json.dumps(v).encode()))
    headers = st.fixed_dictionaries(
        {"alg": st.sampled_from(["none", "HS256", "ES256", "RS256", "PS256", "EdDSA", "", "x"])},
        optional={
            "typ": st.sampled_from(["dpop+jwt", "JWT", "oauth-authz-req+jwt", "at+jwt"]),
            "kid": hostile_text(8),
            "jwk": json_values(6),
            "crit": st.lists(hostile_text(6), max_size=2),
            "b64": st.booleans(),
        },
    ).map(lambda h: b64url(json.dumps(h).encode()))
    deep = st.integers(1, 3000).map(lambda n: b64url(("[" * n + "]" * n).encode()))
    return st.one_of(
        as_json,
        headers,
        deep,
        st.binary(max_size=48).map(b64url),
        hostile_text(24),
        st.just(""),
    )


def compact_tokens() -> st.SearchStrategy[str]:
    """Random, garbled and truncated compact serializations (1 to 4 segments)."""
    return st.one_of(
        st.lists(_segment(), min_size=1, max_size=4).map(".".join),
        hostile_text(80),
    )


#: The key ``signed_tokens`` signs with; tests verify against its public half.
SIGNING_KEY = ec_key("k1")


def signed_tokens() -> st.SearchStrategy[str]:
    """ES256 tokens signed by ``SIGNING_KEY`` with hostile headers and claims; some have their
    header swapped afterwards, which breaks the signature."""
    key = SIGNING_KEY
    extra_header = st.fixed_dictionaries(
        {},
        optional={
            "typ": st.sampled_from(["dpop+jwt", "JWT", "oauth-authz-req+jwt", None]),
            "kid": st.one_of(st.just("k1"), hostile_text(8)),
            "jwk": st.one_of(st.just(public_jwk(key)), json_values(6)),
        },
    )
    claims = st.dictionaries(
        st.sampled_from(
            ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "htm", "htu", "nonce", "ath"]
            + ["client_id", "scope", "authorization_details", "resource", "request", "x"]
        ),
        json_values(8),
        max_size=10,
    )

    def build(parts: tuple[dict[str, Any], dict[str, Any], str | None]) -> str:
        header, body, swapped_alg = parts
        protected = {"alg": "ES256", **{k: v for k, v in header.items() if v is not None}}
        token = _es256(key, protected, json.dumps(body).encode())
        if swapped_alg is None:
            return token
        swapped = b64url(json.dumps({**protected, "alg": swapped_alg}).encode())
        return swapped + token[token.index(".") :]

    swapped = st.one_of(st.none(), st.sampled_from(["none", "HS256", "RS256", "ES384"]))
    return st.tuples(extra_header, claims, swapped).map(build)


def _es256(key: ECKey, header: dict[str, Any], payload: bytes) -> str:
    """ES256 by hand (RFC 7518 3.4), so that headers joserfc would refuse to write can be
    signed correctly: a server must refuse them for what they say, not for a bad signature."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    der = private.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def never_crashes(call: Callable[[], T], *allowed: type[BaseException]) -> T | None:
    """Run ``call``; an ``allowed`` exception is an answer, anything else fails the test."""
    try:
        return call()
    except allowed:
        return None

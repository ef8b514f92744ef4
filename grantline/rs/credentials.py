"""Reading the access token and DPoP proof a request carries (RFC 6750 2.1, RFC 9449 7).

Only the ``Authorization`` header is read: tokens in a form body or the query string
(RFC 6750 2.2, 2.3) end up in logs and caches, so they are not accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from grantline.rs.errors import InvalidDpopProof, InvalidRequest, MissingToken, Scheme

__all__ = ["MAX_TOKEN_LENGTH", "Presented", "presented_credentials"]

#: RFC 6750 2.1 b64token (also RFC 9449 7.1's token68).
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_LENGTH = 16 * 1024
_SCHEMES: dict[str, Scheme] = {"bearer": "Bearer", "dpop": "DPoP"}


@dataclass(frozen=True, slots=True)
class Presented:
    scheme: Scheme
    token: str
    #: The DPoP proof; only read with the DPoP scheme.
    proof: str | None


def presented_credentials(authorization: Sequence[str], dpop: Sequence[str]) -> Presented:
    """The scheme, token and proof of a request, given every value of its ``Authorization``
    and ``DPoP`` header fields."""
    if not authorization:
        raise MissingToken("An access token is required.")
    if len(authorization) > 1:
        raise InvalidRequest("Send exactly one Authorization header.")
    name, _, rest = authorization[0].strip().partition(" ")
    scheme = _SCHEMES.get(name.lower())
    if scheme is None:
        # RFC 6750 3.1: an unsupported method counts as no authentication at all.
        raise MissingToken("An access token is required, with the Bearer or DPoP scheme.")
    token = rest.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH or not _TOKEN68.fullmatch(token):
        raise InvalidRequest("The Authorization header is malformed.", scheme=scheme)
    if len(dpop) > 1:
        # RFC 9449 4.3 step 1: "there is not more than one DPoP HTTP request header field".
        raise InvalidRequest("Send exactly one DPoP header.", scheme="DPoP")
    if scheme == "Bearer":
        return Presented(scheme, token, None)
    if not dpop or not dpop[0].strip():
        raise InvalidDpopProof("The DPoP scheme needs a DPoP proof header.")
    return Presented(scheme, token, dpop[0].strip())

"""Properties of PKCE (RFC 7636): challenges and verifiers from anywhere."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from grantline.errors import InvalidGrant, InvalidRequest
from grantline.protocol.pkce import s256_challenge, validate_challenge, verify
from tests.strategies import PROPERTY, hostile_text

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
VERIFIERS = st.text(_UNRESERVED, min_size=43, max_size=128)


@PROPERTY
@given(st.one_of(st.none(), hostile_text(60)), st.one_of(st.none(), hostile_text(8)))
def test_any_challenge_is_accepted_or_invalid_request(
    challenge: str | None, method: str | None
) -> None:
    try:
        assert validate_challenge(challenge, method) == (challenge, "S256")
    except InvalidRequest as exc:
        assert exc.http_status == 400


@PROPERTY
@given(st.one_of(st.none(), hostile_text(140), VERIFIERS), VERIFIERS)
def test_any_verifier_matches_or_is_refused(presented: str | None, original: str) -> None:
    challenge = s256_challenge(original)
    try:
        verify(presented, challenge)
    except (InvalidGrant, InvalidRequest) as exc:
        assert exc.http_status == 400
        assert presented != original
    else:
        assert presented == original


@PROPERTY
@given(VERIFIERS)
def test_every_s256_challenge_is_a_valid_challenge(verifier: str) -> None:
    challenge = s256_challenge(verifier)
    assert validate_challenge(challenge, "S256") == (challenge, "S256")

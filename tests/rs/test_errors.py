"""The challenges that go with refusals (RFC 6750 3, RFC 9449 7.1)."""

from __future__ import annotations

from grantline.rs.errors import (
    InsufficientAuthorizationDetails,
    InvalidDpopProof,
    InvalidToken,
    MissingToken,
    Scheme,
    TemporarilyUnavailable,
    www_authenticate,
)

BOTH: tuple[Scheme, ...] = ("Bearer", "DPoP")


def test_the_challenge_names_the_error_on_the_scheme_it_is_about() -> None:
    error = InvalidToken("The access token has expired.")
    assert www_authenticate(error, schemes=BOTH, dpop_algs=["ES256"], realm="api") == (
        'Bearer realm="api", error="invalid_token", error_description="The access token has '
        'expired.", DPoP realm="api", algs="ES256"'
    )


def test_a_dpop_refusal_puts_the_dpop_challenge_first() -> None:
    error = InvalidDpopProof("The DPoP proof was already used.")
    assert www_authenticate(error, schemes=BOTH, dpop_algs=["ES256", "EdDSA"]) == (
        'DPoP error="invalid_dpop_proof", error_description="The DPoP proof was already '
        'used.", algs="ES256 EdDSA", Bearer'
    )


def test_no_credentials_get_no_error_code() -> None:
    error = MissingToken("An access token is required.")
    assert www_authenticate(error, schemes=BOTH, dpop_algs=["ES256"]) == 'Bearer, DPoP algs="ES256"'


def test_a_503_takes_no_challenge() -> None:
    error = TemporarilyUnavailable("down")
    assert www_authenticate(error, schemes=BOTH, dpop_algs=["ES256"]) is None
    assert error.headers == {"Retry-After": "5"}


def test_text_that_could_break_out_of_the_quoted_string_is_replaced() -> None:
    error = InsufficientAuthorizationDetails(
        'x", error="forged\\ \r\nSet-Cookie: a=b é', type_="t", fact="x"
    )
    challenge = www_authenticate(error, schemes=["Bearer"], dpop_algs=[], realm='r"')
    assert challenge == (
        'Bearer realm="r?", error="insufficient_authorization_details", '
        'error_description="x?, error=?forged? ??Set-Cookie: a=b ?"'
    )
    # The body keeps the description as it was (JSON escapes it).
    assert error.body()["error_description"].startswith('x", error="forged')


def test_descriptions_are_bounded() -> None:
    error = InvalidToken("x" * 1000)
    assert len(error.description) == 300
    assert error.description.endswith("...")

"""An independent client library, Authlib, completes the PAR flow against ``grantline serve``.

What Authlib (``authlib.integrations.httpx_client.OAuth2Client``, sync) did:

- built the authorization request parameters (``create_authorization_url``): response_type,
  client_id, redirect_uri, scope, state, and the PKCE S256 ``code_challenge`` computed from the
  ``code_verifier`` we gave it;
- the HTTP Basic client authentication of the push, through its own client-auth object
  (``client.client_auth("client_secret_basic")``) passed to the session's ``post``;
- parsing the callback URL, checking ``state`` and extracting ``code`` (``fetch_token(...,
  authorization_response=..., state=...)``);
- the token request (grant_type, code, redirect_uri, code_verifier, Basic authentication) and
  parsing the token response;
- the refresh request (``refresh_token``), updating its stored token, and reporting the reuse
  of a rotated-out refresh token as an ``OAuthError``.

What was done by hand, because Authlib's client has no support for it:

- the push itself (RFC 9126): Authlib has no PAR helper, so the parameters it built were POSTed
  to the PAR endpoint with the session's ``post`` and the 201 response read here;
- the authorization URL carrying only ``client_id`` and ``request_uri``;
- the person's browser (login and consent) is plain httpx;
- the RFC 9207 ``iss`` check: Authlib's client ignores ``iss`` in the authorization response
  (its ``rfc9207`` module is for servers), which is asserted below, so the test compares it with
  the metadata's issuer itself.

Authlib warns at import (``AuthlibDeprecationWarning``) when the ``httpx2`` package is absent and
it falls back to ``httpx``; that one warning is silenced for the import below, since this suite
turns warnings into errors and the project depends on ``httpx``, not ``httpx2``.
"""

from __future__ import annotations

import warnings
from urllib.parse import urlencode

import pytest

from tests.integration.support import (
    GrantlineServer,
    agent_client,
    approve_at,
    browser,
    new_verifier,
    query_of,
    s256,
)

with warnings.catch_warnings():
    # authlib.deprecate puts an "always" filter for its warnings in front at import time, so
    # it is imported first and the "ignore" for this one message goes in front of that.
    import authlib.deprecate  # type: ignore[import-untyped]

    warnings.filterwarnings(
        "ignore",
        message="The httpx module is deprecated",
        category=authlib.deprecate.AuthlibDeprecationWarning,
    )
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        OAuth2Client,
        OAuthError,
    )
    from authlib.oauth2.rfc6749.errors import (  # type: ignore[import-untyped]
        MismatchingStateException,
    )
    from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
        parse_authorization_code_response,
    )

pytestmark = pytest.mark.integration

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def test_authlib_completes_the_par_flow_with_pkce(grantline_server: GrantlineServer) -> None:
    server = grantline_server
    creds = server.credentials
    with agent_client() as http:
        metadata = http.get(server.url("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == server.issuer
    token_endpoint = metadata["token_endpoint"]

    with OAuth2Client(
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=server.dev_redirect_uri,
        scope="inbox.read",
        code_challenge_method="S256",
        timeout=10.0,
    ) as client:
        # Authlib builds the request, including the PKCE challenge.
        verifier = new_verifier()
        built_url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier
        )
        params = query_of(built_url)
        assert params["code_challenge"] == s256(verifier)
        assert params["code_challenge_method"] == "S256"
        assert params["state"] == state
        assert params["client_id"] == creds.client_id
        assert params["redirect_uri"] == server.dev_redirect_uri

        # By hand: push those parameters, authenticated with Authlib's client_secret_basic.
        pushed = client.post(
            metadata["pushed_authorization_request_endpoint"],
            data=params,
            auth=client.client_auth("client_secret_basic"),
        )
        assert pushed.status_code == 201, pushed.text
        assert pushed.request.headers["authorization"].startswith("Basic ")
        request_uri = pushed.json()["request_uri"]
        assert request_uri.startswith(REQUEST_URI_PREFIX)

        # By hand: the browser gets only client_id and request_uri.
        front = {"client_id": creds.client_id, "request_uri": request_uri}
        authorize_url = metadata["authorization_endpoint"] + "?" + urlencode(front)
        with browser(server) as person:
            callback = approve_at(person, server, authorize_url)
        assert callback.startswith(server.dev_redirect_uri + "?")
        answer = query_of(callback)

        # RFC 9207 by hand: Authlib does not look at iss (a wrong one parses just the same).
        assert answer["iss"] == metadata["issuer"]
        forged = callback.replace(urlencode({"iss": answer["iss"]}), "iss=https%3A%2F%2Fevil")
        assert "evil" in forged
        assert parse_authorization_code_response(forged, state=state)["code"] == answer["code"]

        # Authlib checks state before sending anything: a mismatch never reaches the server.
        with pytest.raises(MismatchingStateException):
            client.fetch_token(
                token_endpoint,
                authorization_response=callback,
                code_verifier=verifier,
                state="not-the-state",
            )

        token = client.fetch_token(
            token_endpoint,
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "inbox.read"
        assert token["expires_in"] == 600
        assert token["access_token"] and token["refresh_token"]
        assert not token.is_expired()
        assert client.token["access_token"] == token["access_token"]
        first_refresh = token["refresh_token"]
        first_access = token["access_token"]

        refreshed = client.refresh_token(token_endpoint)
        assert refreshed["access_token"] != first_access
        assert refreshed["refresh_token"] != first_refresh
        assert refreshed["scope"] == "inbox.read"
        assert client.token["refresh_token"] == refreshed["refresh_token"]

        # The rotated-out refresh token is refused, and Authlib reports it.
        with pytest.raises(OAuthError) as refused:
            client.refresh_token(token_endpoint, refresh_token=first_refresh)
        assert refused.value.error == "invalid_grant"

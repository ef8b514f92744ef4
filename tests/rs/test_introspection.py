"""``mode="introspection"``: the token checked by asking the real authorization server
(RFC 7662), as a client registered with ``--can-introspect``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from grantline.rs.errors import ResourceError
from grantline.rs.verify import TokenVerifier
from tests.helpers import CLIENT_SECRET, ISSUER, Agent, FrozenClock
from tests.jose_helpers import ec_key, public_jwk, thumbprint
from tests.rs.conftest import (
    PAYMENT_ITEM,
    RESOURCE,
    RecordingTransport,
    issue_token,
    proof_for,
    verify,
)


def introspecting(
    http: httpx.AsyncClient, clock: FrozenClock, secret: str = CLIENT_SECRET
) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER,
        resource=RESOURCE,
        mode="introspection",
        client_id="payments-api",
        client_secret=secret,
        http=http,
        clock=clock,
    )


async def refused(verifier: TokenVerifier, token: str, **kwargs: Any) -> ResourceError:
    with pytest.raises(ResourceError) as caught:
        await verify(verifier, token, **kwargs)
    return caught.value


async def test_an_active_token_is_described_by_the_authorization_server(
    payer: Agent,
    resource_server: tuple[str, str],
    as_http: httpx.AsyncClient,
    as_transport: RecordingTransport,
    clock: FrozenClock,
) -> None:
    body = await issue_token(payer, clock)
    verified = await verify(introspecting(as_http, clock), body["access_token"])
    assert verified.client_id == "agent"
    assert verified.audience == (RESOURCE,)
    assert verified.authorization_details == (PAYMENT_ITEM,)
    assert verified.jkt is None
    assert as_transport.count("/introspect") == 1
    assert as_transport.count("/jwks") == 0


async def test_an_inactive_token_is_refused(
    payer: Agent,
    resource_server: tuple[str, str],
    as_http: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    body = await issue_token(payer, clock)
    revoked = await payer.http.post(
        "/revoke", data={"token": body["access_token"]}, auth=("agent", CLIENT_SECRET)
    )
    assert revoked.status_code == 200
    # The JWT is still perfectly signed: only the authorization server knows it is revoked.
    error = await refused(introspecting(as_http, clock), body["access_token"])
    assert (error.error, error.status_code) == ("invalid_token", 401)
    assert error.description == "The access token is not active."


async def test_an_expired_token_is_inactive(
    payer: Agent,
    resource_server: tuple[str, str],
    as_http: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    body = await issue_token(payer, clock)
    clock.advance(601)
    error = await refused(introspecting(as_http, clock), body["access_token"])
    assert (error.error, error.status_code) == ("invalid_token", 401)


async def test_a_token_for_another_audience_is_refused(
    payer: Agent,
    resource_server: tuple[str, str],
    as_http: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    body = await issue_token(payer, clock, resource=None)
    error = await refused(introspecting(as_http, clock), body["access_token"])
    assert (error.error, error.status_code) == ("invalid_token", 401)
    assert error.description == "The access token is not meant for this resource."


async def test_wrong_resource_server_credentials_are_503_not_a_bad_token(
    payer: Agent,
    resource_server: tuple[str, str],
    as_http: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    body = await issue_token(payer, clock)
    error = await refused(introspecting(as_http, clock, "wrong-secret"), body["access_token"])
    assert (error.error, error.status_code) == ("temporarily_unavailable", 503)


async def test_a_dpop_bound_token_needs_its_proof_under_introspection_too(
    payer: Agent,
    resource_server: tuple[str, str],
    as_http: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    key = ec_key()
    body = await issue_token(payer, clock, dpop_key=key)
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    verifier = introspecting(as_http, clock)
    as_bearer = await refused(verifier, token)
    assert (as_bearer.error, as_bearer.status_code) == ("invalid_token", 401)
    thief = await refused(
        verifier, token, scheme="DPoP", proof=proof_for(ec_key(), clock.now, token)
    )
    assert (thief.error, thief.status_code) == ("invalid_dpop_proof", 401)
    verified = await verify(verifier, token, scheme="DPoP", proof=proof_for(key, clock.now, token))
    assert verified.jkt == thumbprint(public_jwk(key))


async def test_introspection_needs_the_resource_servers_credentials() -> None:
    with pytest.raises(ValueError, match="client_id and secret"):
        TokenVerifier(issuer=ISSUER, resource=RESOURCE, mode="introspection")

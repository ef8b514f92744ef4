"""Finding the issuer's endpoints (RFC 8414): metadata must name the configured issuer, and a
failed discovery is not repeated for every request."""

from __future__ import annotations

import httpx
import pytest

from grantline.rs.errors import ResourceError
from grantline.rs.verify import TokenVerifier
from grantline.storage.sql import SQLiteStore
from tests.helpers import ISSUER, FrozenClock
from tests.rs.conftest import RESOURCE, Monotonic, RecordingTransport, mint, verify

METADATA = "/.well-known/oauth-authorization-server"


async def refused(verifier: TokenVerifier, token: str) -> ResourceError:
    with pytest.raises(ResourceError) as caught:
        await verify(verifier, token)
    return caught.value


async def test_the_jwks_uri_comes_from_the_metadata(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
) -> None:
    await verify(verifier, await mint(store, clock.now))
    await verify(verifier, await mint(store, clock.now))
    assert [r.url.path for r in as_transport.requests] == [METADATA, "/jwks"]


async def test_metadata_naming_another_issuer_is_not_used(
    store: SQLiteStore, clock: FrozenClock, as_http: httpx.AsyncClient
) -> None:
    # The server at this address says it is http://127.0.0.1:8000 (RFC 8414 3.3).
    issuer = f"{ISSUER}/tenant"
    verifier = TokenVerifier(issuer=issuer, resource=RESOURCE, http=as_http, clock=clock)
    error = await refused(verifier, await mint(store, clock.now, iss=issuer))
    assert (error.error, error.status_code) == ("temporarily_unavailable", 503)


async def test_a_failed_discovery_waits_before_trying_again(
    verifier: TokenVerifier,
    store: SQLiteStore,
    clock: FrozenClock,
    as_transport: RecordingTransport,
    monotonic: Monotonic,
) -> None:
    token = await mint(store, clock.now)
    as_transport.down = True
    for _ in range(5):
        error = await refused(verifier, token)
        assert (error.error, error.status_code) == ("temporarily_unavailable", 503)
    assert as_transport.count(METADATA) == 1
    as_transport.down = False
    monotonic.advance(11)
    assert (await verify(verifier, token)).client_id == "agent"


async def test_configured_endpoints_skip_discovery(
    store: SQLiteStore,
    clock: FrozenClock,
    as_http: httpx.AsyncClient,
    as_transport: RecordingTransport,
) -> None:
    verifier = TokenVerifier(
        issuer=ISSUER, resource=RESOURCE, jwks_uri=f"{ISSUER}/jwks", http=as_http, clock=clock
    )
    await verify(verifier, await mint(store, clock.now))
    assert [r.url.path for r in as_transport.requests] == ["/jwks"]

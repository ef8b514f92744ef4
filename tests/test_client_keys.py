"""Clients' public keys: inline jwks, jwks_uri with its cache, refetch on an unknown kid, rate
limit, failures, and the fetch itself against a real HTTP server."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from grantline import client_keys
from grantline.client_keys import MAX_JWKS_BYTES, ClientKeys, fetch_jwks, parse_public_jwks
from grantline.models import Client
from grantline.protocol.jose import JoseFailure
from tests.helpers import REDIRECT_URI, FrozenClock
from tests.jose_helpers import ec_key, ed_key, jwks_of, public_jwk

JWKS_URI = "https://signer.example/jwks"


def key_client(
    *, jwks: dict[str, Any] | None = None, jwks_uri: str | None = None, client_id: str = "signer"
) -> Client:
    return Client(
        client_id=client_id,
        name="Signer",
        auth_method="private_key_jwt",
        redirect_uris=(REDIRECT_URI,),
        jwks=jwks,
        jwks_uri=jwks_uri,
    )


class FakeJwksUri:
    """An injectable fetch function serving whatever ``document`` currently is."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.fetches: list[str] = []
        self.error: Exception | None = None

    async def __call__(self, uri: str) -> bytes:
        self.fetches.append(uri)
        if self.error is not None:
            raise self.error
        if isinstance(self.document, bytes):
            return self.document
        return json.dumps(self.document).encode()


def kids(keys: Any) -> set[str | None]:
    return {k.kid for k in keys.keys}


@pytest.fixture
def tick() -> FrozenClock:
    return FrozenClock(1000)


# -- inline jwks ----------------------------------------------------------------------------


async def test_inline_jwks_never_fetch(tick: FrozenClock) -> None:
    fetch = FakeJwksUri({"keys": []})
    keys = ClientKeys(fetch, clock=tick)
    one, two = ec_key("one"), ed_key("two")
    got = await keys.keys_for(key_client(jwks=jwks_of(one, two)), "unknown")
    assert kids(got) == {"one", "two"}
    assert fetch.fetches == []


async def test_inline_private_keys_are_refused(tick: FrozenClock) -> None:
    keys = ClientKeys(FakeJwksUri({}), clock=tick)
    private = {"keys": [ec_key("one").as_dict(private=True)]}
    with pytest.raises(JoseFailure, match="private key material"):
        await keys.keys_for(key_client(jwks=private), "one")


async def test_a_client_without_keys_has_none(tick: FrozenClock) -> None:
    with pytest.raises(JoseFailure, match="no registered keys"):
        await ClientKeys(FakeJwksUri({}), clock=tick).keys_for(key_client(), None)


# -- jwks_uri cache -------------------------------------------------------------------------


async def test_a_fetched_set_is_cached_for_known_kids(tick: FrozenClock) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    keys = ClientKeys(fetch, ttl=300, min_interval=10, clock=tick)
    client = key_client(jwks_uri=JWKS_URI)
    assert kids(await keys.keys_for(client, "one")) == {"one"}
    tick.advance(299)
    assert kids(await keys.keys_for(client, "one")) == {"one"}
    assert kids(await keys.keys_for(client, None)) == {"one"}
    assert fetch.fetches == [JWKS_URI]


async def test_the_cache_expires_after_ttl(tick: FrozenClock) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    keys = ClientKeys(fetch, ttl=300, min_interval=10, clock=tick)
    client = key_client(jwks_uri=JWKS_URI)
    await keys.keys_for(client, "one")
    tick.advance(300)
    fetch.document = jwks_of(ec_key("rotated"))
    assert kids(await keys.keys_for(client, "rotated")) == {"rotated"}
    assert len(fetch.fetches) == 2


async def test_an_unknown_kid_triggers_exactly_one_refetch(tick: FrozenClock) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    keys = ClientKeys(fetch, ttl=300, min_interval=10, clock=tick)
    client = key_client(jwks_uri=JWKS_URI)
    await keys.keys_for(client, "one")
    tick.advance(10)
    fetch.document = jwks_of(ec_key("one"), ec_key("two"))
    assert kids(await keys.keys_for(client, "two")) == {"one", "two"}
    assert len(fetch.fetches) == 2
    # Now known: no further fetch.
    assert kids(await keys.keys_for(client, "two")) == {"one", "two"}
    assert len(fetch.fetches) == 2


async def test_unknown_kids_refetch_at_most_every_min_interval(tick: FrozenClock) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    keys = ClientKeys(fetch, ttl=300, min_interval=10, clock=tick)
    client = key_client(jwks_uri=JWKS_URI)
    await keys.keys_for(client, "one")
    # Within min_interval an attacker's random kids are answered from the cache.
    for n in range(5):
        tick.advance(1)
        assert kids(await keys.keys_for(client, f"random-{n}")) == {"one"}
    assert len(fetch.fetches) == 1
    tick.advance(5)  # 10 s after the fetch
    await keys.keys_for(client, "random-x")
    assert len(fetch.fetches) == 2
    for n in range(9):
        tick.advance(1)
        await keys.keys_for(client, f"random-again-{n}")
    assert len(fetch.fetches) == 2


async def test_a_cache_is_per_jwks_uri_and_shared_by_clients(tick: FrozenClock) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    keys = ClientKeys(fetch, clock=tick)
    await keys.keys_for(key_client(jwks_uri=JWKS_URI), "one")
    await keys.keys_for(key_client(jwks_uri=JWKS_URI, client_id="twin"), "one")
    await keys.keys_for(key_client(jwks_uri=JWKS_URI + "?other"), "one")
    assert fetch.fetches == [JWKS_URI, JWKS_URI + "?other"]


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (httpx.ConnectError("refused"), "ConnectError"),
        (httpx.ReadTimeout("slow"), "ReadTimeout"),
        (JoseFailure("jwks_uri answered 500"), "JoseFailure"),
    ],
)
async def test_a_failed_first_fetch_is_a_failure(
    tick: FrozenClock, error: Exception, name: str
) -> None:
    fetch = FakeJwksUri({})
    fetch.error = error
    keys = ClientKeys(fetch, clock=tick)
    with pytest.raises(JoseFailure, match=f"could not be fetched \\({name}\\)"):
        await keys.keys_for(key_client(jwks_uri=JWKS_URI), "one")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param(b"<html>", "could not be fetched", id="not-json"),
        pytest.param({"keys": []}, "empty", id="empty"),
        pytest.param({"no": "keys"}, "not a JWK Set", id="not-a-set"),
        pytest.param([1], "not a JWK Set", id="array"),
        pytest.param({"keys": {"kty": "EC"}}, "not a JWK Set", id="keys-object"),
        pytest.param(
            {"keys": [ec_key("one").as_dict(private=True)]}, "private key material", id="private"
        ),
    ],
)
async def test_bad_documents_are_refused(tick: FrozenClock, document: Any, reason: str) -> None:
    keys = ClientKeys(FakeJwksUri(document), clock=tick)
    with pytest.raises(JoseFailure, match=reason):
        await keys.keys_for(key_client(jwks_uri=JWKS_URI), "one")


async def test_a_failed_refetch_falls_back_to_the_cache(tick: FrozenClock) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    keys = ClientKeys(fetch, ttl=300, min_interval=10, clock=tick)
    client = key_client(jwks_uri=JWKS_URI)
    await keys.keys_for(client, "one")
    tick.advance(30)
    fetch.error = httpx.ConnectError("down")
    assert kids(await keys.keys_for(client, "two")) == {"one"}
    assert len(fetch.fetches) == 2
    # Even past the ttl the last good set keeps working while the uri is down.
    tick.advance(1000)
    assert kids(await keys.keys_for(client, "one")) == {"one"}


@pytest.mark.parametrize("cached", [True, False], ids=["with-cache", "without-cache"])
async def test_failed_fetches_are_rate_limited_too(tick: FrozenClock, cached: bool) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    keys = ClientKeys(fetch, ttl=300, min_interval=10, clock=tick)
    client = key_client(jwks_uri=JWKS_URI)
    if cached:
        await keys.keys_for(client, "one")
        tick.advance(10)
    fetch.error = httpx.ConnectError("down")
    for n in range(5):
        with contextlib.suppress(JoseFailure):
            await keys.keys_for(client, f"random-{n}")
        tick.advance(1)
    attempts_while_down = len(fetch.fetches) - (1 if cached else 0)
    assert attempts_while_down == 1
    # After min_interval since the failed attempt, one more try is allowed.
    tick.advance(5)
    with contextlib.suppress(JoseFailure):
        await keys.keys_for(client, "random-late")
    assert len(fetch.fetches) - (1 if cached else 0) == 2


async def test_without_a_cache_a_recent_failure_is_reported_without_fetching(
    tick: FrozenClock,
) -> None:
    fetch = FakeJwksUri(jwks_of(ec_key("one")))
    fetch.error = httpx.ConnectError("down")
    keys = ClientKeys(fetch, ttl=300, min_interval=10, clock=tick)
    client = key_client(jwks_uri=JWKS_URI)
    with pytest.raises(JoseFailure, match=r"could not be fetched \(ConnectError\)"):
        await keys.keys_for(client, "one")
    fetch.error = None  # the uri is back, but the server waits out min_interval
    tick.advance(9)
    with pytest.raises(JoseFailure, match="failed recently"):
        await keys.keys_for(client, "one")
    tick.advance(1)
    assert kids(await keys.keys_for(client, "one")) == {"one"}
    assert len(fetch.fetches) == 2


def test_parse_public_jwks_keeps_at_most_32_keys() -> None:
    many = {"keys": [public_jwk(ec_key(f"k{n}")) for n in range(40)]}
    assert len(parse_public_jwks(many).keys) == 32


# -- fetch_jwks against a real server -------------------------------------------------------

DOCUMENT = json.dumps(jwks_of(ec_key("served"))).encode()


class _Handler(BaseHTTPRequestHandler):
    requests: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        type(self).requests.append((self.path, self.headers.get("accept")))
        if self.path == "/jwks":
            self._send(200, DOCUMENT)
        elif self.path == "/exact":
            self._send(200, b" " * (MAX_JWKS_BYTES - len(DOCUMENT)) + DOCUMENT)
        elif self.path == "/big":
            self._send(200, b" " * MAX_JWKS_BYTES + DOCUMENT)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/jwks")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(0.6)
            self._send(200, DOCUMENT)
        elif self.path == "/error":
            self._send(500, b"{}")
        else:
            self._send(404, b"not found")

    def _send(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_fetch_jwks_reads_a_document(server: str) -> None:
    assert await fetch_jwks(f"{server}/jwks") == DOCUMENT
    assert _Handler.requests == [("/jwks", "application/json")]


async def test_fetch_jwks_accepts_exactly_the_size_limit(server: str) -> None:
    body = await fetch_jwks(f"{server}/exact")
    assert len(body) == MAX_JWKS_BYTES
    assert kids(parse_public_jwks(json.loads(body))) == {"served"}


async def test_fetch_jwks_refuses_an_oversized_document(server: str) -> None:
    with pytest.raises(JoseFailure, match="too large"):
        await fetch_jwks(f"{server}/big")


@pytest.mark.parametrize(
    ("path", "status"), [("/missing", 404), ("/error", 500), ("/redirect", 302)]
)
async def test_fetch_jwks_refuses_anything_but_200(server: str, path: str, status: int) -> None:
    with pytest.raises(JoseFailure, match=f"answered {status}"):
        await fetch_jwks(f"{server}{path}")
    # Redirects are not followed: only the one request reached the server.
    assert [p for p, _ in _Handler.requests] == [path]


async def test_fetch_jwks_times_out(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_keys, "FETCH_TIMEOUT", 0.1)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        await fetch_jwks(f"{server}/slow")
    assert time.monotonic() - started < 0.5


async def test_client_keys_with_the_real_fetch(server: str, tick: FrozenClock) -> None:
    keys = ClientKeys(clock=tick)
    assert kids(await keys.keys_for(key_client(jwks_uri=f"{server}/jwks"), "served")) == {"served"}
    with pytest.raises(JoseFailure, match=r"could not be fetched \(JoseFailure\)"):
        await keys.keys_for(key_client(jwks_uri=f"{server}/big"), "served")
    with pytest.raises(JoseFailure, match=r"could not be fetched \(JoseFailure\)"):
        await keys.keys_for(key_client(jwks_uri=f"{server}/missing"), "served")

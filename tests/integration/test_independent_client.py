"""A client written without Grantline's code (``independent_client``: joserfc, httpx and the
standard library) against a real ``grantline serve`` running the FAPI 2.0 profile with DPoP
nonces: private_key_jwt (RFC 7523), signed request objects (RFC 9101) at PAR (RFC 9126), DPoP
(RFC 9449), then the same pieces replayed, forged and swapped from an attacker's side, and a
client whose keys live at a ``jwks_uri`` it rotates.
"""

from __future__ import annotations

import ast
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet, import_key

from tests.integration import independent_client
from tests.integration.independent_client import (
    ClientKey,
    IndependentClient,
    Pkce,
    discover,
    jwks_of,
)
from tests.integration.rar_support import PAYMENT_ITEM
from tests.integration.support import (
    GrantlineServer,
    ServerFactory,
    agent_client,
    browser,
    clean_environment,
    only_form,
    open_interaction,
    query_of,
    sign_in,
)

pytestmark = pytest.mark.integration

#: Lines of the grantline.toml that ``grantline init`` writes, and what they become here.
FAPI2_EDITS = {
    '# profile = "fapi2"': 'profile = "fapi2"',
    "dpop_nonce_required = false": "dpop_nonce_required = true",
}
#: Grantline refetches a jwks_uri for an unknown kid at most this often (client_keys.py).
JWKS_REFETCH_INTERVAL = 10.0


# -- a FAPI 2.0 server with DPoP nonces ------------------------------------------------------


@pytest.fixture(scope="module")
def fapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrantlineServer]:
    factory = ServerFactory(tmp_path_factory.mktemp("grantline-fapi2"))
    try:
        yield factory(edits=FAPI2_EDITS)
    finally:
        problems = factory.close()
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with agent_client() as client:
        yield client


def register(
    server: GrantlineServer, tmp_path: Path, *keys: ClientKey, jwks_uri: str | None = None
) -> str:
    """``grantline clients add --auth-method private_key_jwt`` with ``--jwks FILE`` holding the
    public keys, or with ``--jwks-uri``; returns the client_id."""
    args = ["clients", "add", "--name", "Independent client", "--json"]
    args += ["--redirect-uri", server.dev_redirect_uri, "--auth-method", "private_key_jwt"]
    if jwks_uri is None:
        path = tmp_path / f"jwks-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(jwks_of(*keys)))
        args += ["--jwks", str(path)]
    else:
        args += ["--jwks-uri", jwks_uri]
    described = json.loads(server.cli(*args))
    assert described["token_endpoint_auth_method"] == "private_key_jwt"
    return str(described["client_id"])


def new_client(server: GrantlineServer, tmp_path: Path, http: httpx.Client) -> IndependentClient:
    """A newly registered client: an ES256 key signs its assertions and request objects, an
    Ed25519 key its DPoP proofs."""
    key = ClientKey.es256()
    client_id = register(server, tmp_path, key)
    metadata = discover(http, server.issuer)
    return IndependentClient(http, metadata, client_id, key, ClientKey.ed25519())


# -- the person's side -----------------------------------------------------------------------


def approve_everything(server: GrantlineServer, url: str) -> dict[str, str]:
    """In a new browser: open ``url``, sign in as the dev user, approve with every item ticked
    (the consent form's own checkboxes); returns the callback's query parameters."""
    with browser(server) as person:
        interaction = open_interaction(person, url)
        sign_in(person, server, only_form(person.get(interaction).text))
        consent = only_form(person.get(interaction).text)
        assert consent.inputs["csrf_token"]
        decided = person.post(consent.action, data={**consent.inputs, "decision": "approve"})
        assert decided.status_code == 303, decided.text
        callback = str(decided.headers["location"])
    assert callback.startswith(server.dev_redirect_uri + "?"), callback
    return query_of(callback)


@dataclass(frozen=True)
class Authorized:
    """A code the person approved for ``client``, not yet redeemed."""

    code: str
    pkce: Pkce
    redirect_uri: str


def authorize(
    client: IndependentClient,
    server: GrantlineServer,
    *,
    authorization_details: list[dict[str, Any]] | None = None,
) -> Authorized:
    """Push a signed request object with private_key_jwt and a DPoP header, then approve."""
    pkce, state = Pkce.new(), secrets.token_urlsafe(16)
    params = client.authorization_params(
        redirect_uri=server.dev_redirect_uri,
        pkce=pkce,
        state=state,
        scope="inbox.read",
        authorization_details=authorization_details,
    )
    pushed = client.push(params)
    assert pushed.status_code == 201, pushed.text
    callback = approve_everything(server, client.authorization_url(pushed.json()["request_uri"]))
    assert callback["state"] == state
    assert callback["iss"] == server.issuer  # RFC 9207
    return Authorized(callback["code"], pkce, server.dev_redirect_uri)


def redeem(client: IndependentClient, authorized: Authorized, **kwargs: Any) -> httpx.Response:
    return client.exchange(
        authorized.code,
        redirect_uri=authorized.redirect_uri,
        verifier=authorized.pkce.verifier,
        **kwargs,
    )


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert (response.status_code, response.json().get("error")) == (status, error), (
        response.status_code,
        response.text,
    )


def verified_access_token(http: httpx.Client, server: GrantlineServer, token: str) -> Any:
    """The access token's claims, its signature checked against the server's /jwks."""
    keys = KeySet.import_key_set(http.get(server.url("/jwks")).json())
    decoded = jwt.decode(token, keys, algorithms=["ES256", "Ed25519", "RS256"])
    assert decoded.header["typ"] == "at+jwt"  # RFC 9068 2.1
    return decoded.claims


# -- the client is independent ---------------------------------------------------------------


def test_the_client_module_does_not_import_grantline() -> None:
    path = Path(independent_client.__file__)
    # Its import statements name only the standard library, httpx and joserfc.
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "no relative imports"
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names == {"httpx", "joserfc"}, imported
    # Imported alone in a fresh interpreter (no conftest, no package __init__), nothing from
    # grantline ends up in sys.modules.
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(path.parent)!r})\n"
        "import independent_client\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'grantline'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=clean_environment(),
        cwd=path.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_key_thumbprints_agree_with_joserfc() -> None:
    # RFC 7638 by hand in the client, joserfc's implementation here.
    for key in (ClientKey.es256(), ClientKey.ed25519()):
        assert key.thumbprint() == key.key.thumbprint()
        assert "d" not in jwks_of(key)["keys"][0]


def _verified(token: str, key: ClientKey) -> tuple[dict[str, Any], dict[str, Any]]:
    public = import_key(key.public_jwk())  # the public half only
    decoded = jws.deserialize_compact(token, public, algorithms=[key.alg])
    return dict(decoded.headers()), json.loads(decoded.payload)


def test_the_clients_jwts_carry_what_the_rfcs_ask(http: httpx.Client) -> None:
    metadata = {"issuer": "https://as.example", "token_endpoint": "https://as.example/token"}
    key, dpop_key = ClientKey.es256(), ClientKey.ed25519()
    client = IndependentClient(http, metadata, "client-1", key, dpop_key)

    header, claims = _verified(client.client_assertion(), key)  # RFC 7523 3
    assert header["kid"] == key.kid
    assert claims["iss"] == claims["sub"] == "client-1"
    assert claims["aud"] == "https://as.example"
    assert claims["jti"] and claims["exp"] > claims["iat"]

    params = {"scope": "inbox.read", "authorization_details": [PAYMENT_ITEM]}
    header, claims = _verified(client.request_object(params), key)  # RFC 9101 4
    assert header["typ"] == "oauth-authz-req+jwt"
    assert (claims["iss"], claims["aud"]) == ("client-1", "https://as.example")
    assert claims["authorization_details"] == [PAYMENT_ITEM]  # a JSON array, not its text
    assert claims["nbf"] <= claims["iat"] < claims["exp"] and claims["jti"]

    client.nonce = "n-1"
    proof = client.dpop_proof("POST", "https://as.example/token", access_token="at")
    header, claims = _verified(proof, dpop_key)  # RFC 9449 4.2
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "Ed25519"
    assert header["jwk"] == dpop_key.public_jwk() and "d" not in header["jwk"]
    assert (claims["htm"], claims["htu"], claims["nonce"]) == (
        "POST",
        "https://as.example/token",
        "n-1",
    )
    assert claims["ath"] == "sda5G2fCr6XjIpiNlGJjjTVN34oe9526mH-BXCK0uu4"  # SHA-256 of "at"
    assert claims["jti"] and isinstance(claims["iat"], int)


# -- a. the whole flow -----------------------------------------------------------------------


def test_fapi2_flow_with_private_key_jwt_request_object_and_dpop(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    server = fapi_server
    client = new_client(server, tmp_path, http)
    assert client.metadata["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "Ed25519" in client.metadata["dpop_signing_alg_values_supported"]

    authorized = authorize(client, server, authorization_details=[PAYMENT_ITEM])
    # The first push carried no nonce: the server asked for one and the client retried.
    assert client.nonce_retries == 1
    assert client.nonce is not None

    response = redeem(client, authorized)
    assert response.status_code == 200, response.text
    assert client.nonce_retries == 1  # the nonce from the push was good at the token endpoint
    tokens = response.json()
    assert tokens["token_type"] == "DPoP"
    assert client.dpop_key is not None
    jkt = client.dpop_key.thumbprint()
    claims = verified_access_token(http, server, tokens["access_token"])
    assert claims["cnf"] == {"jkt": jkt}
    assert claims["client_id"] == client.client_id
    assert claims["iss"] == server.issuer
    assert claims["authorization_details"] == [PAYMENT_ITEM]

    # Refresh, with a new proof from the same key.
    refreshed = client.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["token_type"] == "DPoP"
    assert renewed["refresh_token"] != tokens["refresh_token"]
    renewed_claims = verified_access_token(http, server, renewed["access_token"])
    assert renewed_claims["cnf"] == {"jkt": jkt}
    assert renewed_claims["authorization_details"] == [PAYMENT_ITEM]

    # Introspection, authenticated with private_key_jwt as well.
    introspected = client.introspect(renewed["access_token"])
    assert introspected.status_code == 200, introspected.text
    body = introspected.json()
    assert body["active"] is True
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": jkt}
    assert body["client_id"] == client.client_id


# -- b. the attacker's side ------------------------------------------------------------------


def _nonce_for(client: IndependentClient, params: dict[str, Any]) -> str:
    """Push once to learn the server's DPoP nonce (the client retries by itself)."""
    response = client.push(params)
    assert response.status_code == 201, response.text
    assert client.nonce is not None
    return client.nonce


def test_a_replayed_client_assertion_is_refused(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    client = new_client(fapi_server, tmp_path, http)
    params = client.authorization_params(
        redirect_uri=fapi_server.dev_redirect_uri, pkce=Pkce.new(), state="s"
    )
    client.nonce = _nonce_for(client, params)
    assertion = client.client_assertion()
    first = client.push(params, assertion=assertion)
    assert first.status_code == 201, first.text
    # Someone who saw the assertion (a log, a proxy) sends it again, with everything else new,
    # to the same endpoint or, since its aud is the issuer, to another one.
    replayed = client.push(params, assertion=assertion)
    assert_error(replayed, 401, "invalid_client")
    elsewhere = client.introspect("some-token", assertion=assertion)
    assert_error(elsewhere, 401, "invalid_client")


def test_an_assertion_for_another_audience_is_refused_by_the_fapi2_server(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    client = new_client(fapi_server, tmp_path, http)
    accepted = client.introspect("x", assertion=client.client_assertion(aud=[client.issuer]))
    assert accepted.status_code == 200, accepted.text
    # FAPI 2.0 5.3.2.1: the issuer identifier is the audience, not an endpoint's URL.
    for aud in (client.metadata["token_endpoint"], client.metadata["introspection_endpoint"]):
        refused = client.introspect("x", assertion=client.client_assertion(aud=aud))
        assert_error(refused, 401, "invalid_client")


def test_a_request_object_signed_with_another_clients_key_is_refused(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    victim = new_client(fapi_server, tmp_path, http)
    attacker = new_client(fapi_server, tmp_path, http)
    params = victim.authorization_params(
        redirect_uri=fapi_server.dev_redirect_uri, pkce=Pkce.new(), state="s"
    )
    victim.nonce = _nonce_for(victim, params)
    # The victim's client authentication is genuine; the request object inside is the
    # attacker's, naming the victim as iss, under the victim's kid and under the attacker's.
    for kid in (victim.key.kid, attacker.key.kid):
        forged = victim.request_object(params, key=attacker.key, kid=kid)
        response = victim.post(
            "pushed_authorization_request_endpoint",
            {"client_id": victim.client_id, "request": forged},
        )
        assert_error(response, 400, "invalid_request_object")


def test_a_replayed_request_object_is_refused(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    client = new_client(fapi_server, tmp_path, http)
    params = client.authorization_params(
        redirect_uri=fapi_server.dev_redirect_uri, pkce=Pkce.new(), state="s"
    )
    client.nonce = _nonce_for(client, params)
    form = {"client_id": client.client_id, "request": client.request_object(params)}
    first = client.post("pushed_authorization_request_endpoint", form)
    assert first.status_code == 201, first.text
    # Fresh client assertion, fresh proof: only the request object is the same.
    again = client.post("pushed_authorization_request_endpoint", form)
    assert_error(again, 400, "invalid_request_object")


def test_a_dpop_bound_code_needs_the_bound_key(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    client = new_client(fapi_server, tmp_path, http)
    authorized = authorize(client, fapi_server)
    # A thief with the code, the verifier and even the client's authentication, but another
    # DPoP key: the code was bound to the key of the push (RFC 9449 10).
    stolen_key = ClientKey.es256()
    thief_proof = client.dpop_proof("POST", client.metadata["token_endpoint"], key=stolen_key)
    refused = redeem(client, authorized, proof=thief_proof)
    assert_error(refused, 400, "invalid_grant")
    # The refusal did not burn the code: the legitimate key still redeems it.
    redeemed = redeem(client, authorized)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["token_type"] == "DPoP"
    claims = verified_access_token(http, fapi_server, redeemed.json()["access_token"])
    assert client.dpop_key is not None
    assert claims["cnf"] == {"jkt": client.dpop_key.thumbprint()}


def test_a_replayed_dpop_proof_is_refused(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    client = new_client(fapi_server, tmp_path, http)
    tokens = redeem(client, authorize(client, fapi_server))
    assert tokens.status_code == 200, tokens.text
    proof = client.dpop_proof("POST", client.metadata["token_endpoint"])
    first = client.refresh(tokens.json()["refresh_token"], proof=proof)
    assert first.status_code == 200, first.text
    # The same proof again, with a fresh client assertion and the new refresh token.
    replayed = client.refresh(first.json()["refresh_token"], proof=proof)
    assert_error(replayed, 400, "invalid_dpop_proof")


def test_a_client_secret_client_is_refused_by_the_fapi2_server(
    fapi_server: GrantlineServer, http: httpx.Client
) -> None:
    creds = fapi_server.credentials  # dev-agent, registered by init with client_secret_basic
    pkce = Pkce.new()
    data = {
        "response_type": "code",
        "redirect_uri": fapi_server.dev_redirect_uri,
        "state": "s",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    basic = (creds.client_id, creds.client_secret)
    pushed = http.post(fapi_server.url("/par"), auth=basic, data=data)
    assert_error(pushed, 401, "invalid_client")
    token = http.post(
        fapi_server.url("/token"),
        auth=basic,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
    )
    assert_error(token, 401, "invalid_client")


def test_the_fapi2_refusal_of_basic_carries_the_basic_challenge(
    fapi_server: GrantlineServer, http: httpx.Client
) -> None:
    creds = fapi_server.credentials
    response = http.post(
        fapi_server.url("/par"),
        auth=(creds.client_id, creds.client_secret),
        data={"response_type": "code"},
    )
    assert_error(response, 401, "invalid_client")
    # RFC 6749 5.2: a 401 to a client that used the Authorization header MUST carry a
    # WWW-Authenticate matching its scheme.
    assert response.headers.get("www-authenticate", "").startswith("Basic "), response.headers


def test_a_nonce_challenge_at_par_leaves_the_request_object_usable(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    client = new_client(fapi_server, tmp_path, http)
    params = client.authorization_params(
        redirect_uri=fapi_server.dev_redirect_uri, pkce=Pkce.new(), state="s"
    )
    form = {"client_id": client.client_id, "request": client.request_object(params)}
    url = client.metadata["pushed_authorization_request_endpoint"]
    challenged = client.post(
        "pushed_authorization_request_endpoint", form, proof=client.dpop_proof("POST", url)
    )
    assert_error(challenged, 400, "use_dpop_nonce")
    assert client.nonce == challenged.headers["dpop-nonce"]
    # RFC 9449 8: the client retries the same request with a proof carrying the nonce.
    retried = client.post(
        "pushed_authorization_request_endpoint", form, proof=client.dpop_proof("POST", url)
    )
    assert retried.status_code == 201, retried.text


# -- c. keys at a jwks_uri, rotated ----------------------------------------------------------


class JwksHost:
    """The client's own JWKS endpoint: ``http.server`` in a thread on 127.0.0.1, serving
    whatever was last published and noting when Grantline fetched it."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches: list[float] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.fetches.append(time.monotonic())
                body = json.dumps(host.document).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def publish(self, *keys: ClientKey) -> None:
        self.document = jwks_of(*keys)

    def __enter__(self) -> JwksHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_a_jwks_uri_client_authenticates_and_survives_a_key_rotation(
    fapi_server: GrantlineServer, tmp_path: Path, http: httpx.Client
) -> None:
    server = fapi_server
    with JwksHost() as host:
        old_key = ClientKey.es256(kid="key-1")
        host.publish(old_key)
        client_id = register(server, tmp_path, jwks_uri=host.url)
        metadata = discover(http, server.issuer)
        client = IndependentClient(http, metadata, client_id, old_key, ClientKey.ed25519())

        tokens = redeem(client, authorize(client, server))
        assert tokens.status_code == 200, tokens.text
        assert host.fetches, "Grantline never fetched the jwks_uri"

        # The client rotates: only the new key is published, and it signs from now on.
        new_key = ClientKey.es256(kid="key-2")
        host.publish(new_key)
        client.key = new_key
        # Grantline refetches for an unknown kid, but not more often than every 10 s.
        time.sleep(max(0.0, host.fetches[-1] + JWKS_REFETCH_INTERVAL + 0.5 - time.monotonic()))
        fetched = len(host.fetches)
        refreshed = client.refresh(tokens.json()["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert len(host.fetches) == fetched + 1, "the new kid did not cause a refetch"

        # The new key also signs request objects and authenticates the next authorization.
        again = redeem(client, authorize(client, server))
        assert again.status_code == 200, again.text
        assert len(host.fetches) == fetched + 1  # the cache serves the known kid

        # The withdrawn key no longer authenticates anything.
        stale = client.client_assertion(key=old_key)
        refused = client.introspect(again.json()["access_token"], assertion=stale)
        assert_error(refused, 401, "invalid_client")

"""The PAR flow over real HTTP against ``grantline serve``: push, authorize, login, consent,
token, refresh rotation, and the single-use and binding rules around them."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration.support import (
    GrantlineServer,
    Pushed,
    ServerFactory,
    agent_client,
    browser,
    clients_for,
    exchange_code,
    json_lines,
    new_verifier,
    only_form,
    push,
    push_dev,
    query_of,
    s256,
    sign_in_and_approve,
)

pytestmark = pytest.mark.integration

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
DEV_CLIENT_NAME = "Example agent (development only)"
INBOX_READ_TEXT = "Read messages in your inbox"
#: What ``grantline init --dev`` records before any request.
INIT_EVENTS = {"signing_key.created", "client.registered", "user.added"}


def error_code_on_page(response: httpx.Response) -> str:
    """The error code an HTML error page shows in ``#error-code``."""
    assert response.headers["content-type"].startswith("text/html"), response.headers
    match = re.search(r'<code id="error-code">([^<]*)</code>', response.text)
    assert match, response.text
    return match.group(1)


def dev_tokens(
    agent: httpx.Client, person: httpx.Client, server: GrantlineServer
) -> tuple[Pushed, str, httpx.Response]:
    """One complete authorization for the dev client: (pushed, code, token response)."""
    creds = server.credentials
    pushed = push_dev(agent, server)
    callback = sign_in_and_approve(person, server, creds.client_id, pushed.request_uri)
    code = query_of(callback)["code"]
    response = exchange_code(
        agent,
        server,
        code,
        pushed,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
    )
    return pushed, code, response


def refresh(agent: httpx.Client, server: GrantlineServer, refresh_token: str) -> httpx.Response:
    creds = server.credentials
    return agent.post(
        server.url("/token"),
        auth=(creds.client_id, creds.client_secret),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def test_metadata_describes_this_server(grantline_server: GrantlineServer) -> None:
    with agent_client() as agent:
        response = agent.get(grantline_server.url("/.well-known/oauth-authorization-server"))
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == grantline_server.issuer
    assert metadata["pushed_authorization_request_endpoint"] == grantline_server.url("/par")
    assert metadata["token_endpoint"] == grantline_server.url("/token")
    assert metadata["require_pushed_authorization_requests"] is True
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_par_flow_then_refresh_rotation_and_family_revocation(
    grantline_server: GrantlineServer,
) -> None:
    server = grantline_server
    creds = server.credentials
    with clients_for(server) as (agent, person):
        # The client pushes its request (RFC 9126 2.1).
        verifier = new_verifier()
        pushed_response = agent.post(
            server.url("/par"),
            auth=(creds.client_id, creds.client_secret),
            data={
                "response_type": "code",
                "redirect_uri": server.dev_redirect_uri,
                "scope": "inbox.read",
                "state": "state-xyz",
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            },
        )
        assert pushed_response.status_code == 201, pushed_response.text
        assert pushed_response.headers["cache-control"] == "no-store"
        pushed = pushed_response.json()
        request_uri = pushed["request_uri"]
        assert request_uri.startswith(REQUEST_URI_PREFIX)
        assert pushed["expires_in"] == 60  # par_lifetime in the grantline.toml init writes

        # The browser presents only client_id and request_uri (RFC 9126 4).
        opened = person.get(
            "/authorize", params={"client_id": creds.client_id, "request_uri": request_uri}
        )
        assert opened.status_code == 303, opened.text
        interaction = opened.headers["location"]
        assert interaction.startswith("/interaction/")
        assert "grantline_browser" in person.cookies

        # Login page.
        login_page = person.get(interaction)
        assert login_page.status_code == 200, login_page.text
        assert DEV_CLIENT_NAME in login_page.text
        login_form = only_form(login_page.text)
        assert login_form.action == f"{interaction}/login"
        assert login_form.method == "post"
        assert {"csrf_token", "username", "password"} <= set(login_form.inputs)
        assert login_form.inputs["csrf_token"]

        logged_in = person.post(
            f"{interaction}/login",
            data={
                "username": creds.username,
                "password": creds.password,
                "csrf_token": login_form.inputs["csrf_token"],
            },
        )
        assert logged_in.status_code == 303, logged_in.text
        assert logged_in.headers["location"] == interaction
        assert "grantline_session" in person.cookies

        # Consent page.
        consent_page = person.get(interaction)
        assert consent_page.status_code == 200, consent_page.text
        assert DEV_CLIENT_NAME in consent_page.text
        assert INBOX_READ_TEXT in consent_page.text
        consent_form = only_form(consent_page.text)
        assert consent_form.action == f"{interaction}/decision"
        assert ("decision", "approve") in consent_form.buttons
        assert ("decision", "deny") in consent_form.buttons

        decided = person.post(
            f"{interaction}/decision",
            data={"decision": "approve", "csrf_token": consent_form.inputs["csrf_token"]},
        )
        assert decided.status_code == 303, decided.text
        location = decided.headers["location"]
        assert location.startswith(server.dev_redirect_uri + "?")
        answer = query_of(location)
        assert set(answer) == {"code", "state", "iss"}
        assert answer["state"] == "state-xyz"
        assert answer["iss"] == server.issuer  # RFC 9207

        # The client redeems the code (RFC 6749 4.1.3, RFC 7636 4.5).
        token_response = agent.post(
            server.url("/token"),
            auth=(creds.client_id, creds.client_secret),
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": server.dev_redirect_uri,
                "code_verifier": verifier,
            },
        )
        assert token_response.status_code == 200, token_response.text
        assert token_response.headers["cache-control"] == "no-store"
        tokens = token_response.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["scope"] == "inbox.read"
        assert tokens["expires_in"] == 600
        assert tokens["access_token"] and tokens["refresh_token"]
        assert tokens["access_token"] != tokens["refresh_token"]

        # Rotation: the refresh token is replaced on every use.
        rotated_response = refresh(agent, server, tokens["refresh_token"])
        assert rotated_response.status_code == 200, rotated_response.text
        rotated = rotated_response.json()
        assert rotated["scope"] == "inbox.read"
        assert rotated["refresh_token"] not in (tokens["refresh_token"], tokens["access_token"])
        assert rotated["access_token"] != tokens["access_token"]

        # An independent grant (another browser), to show that revocation stays in one family.
        with browser(server) as someone_else:
            _, _, other_response = dev_tokens(agent, someone_else, server)
        assert other_response.status_code == 200, other_response.text
        other = other_response.json()

        # Reuse of the rotated-out token: refused, and the whole family goes (RFC 9700 4.14.2).
        reused = refresh(agent, server, tokens["refresh_token"])
        assert reused.status_code == 400, reused.text
        assert reused.json()["error"] == "invalid_grant"

        newest = refresh(agent, server, rotated["refresh_token"])
        assert newest.status_code == 400, newest.text
        assert newest.json()["error"] == "invalid_grant"
        assert "revoked" in newest.json()["error_description"]

        unrelated = refresh(agent, server, other["refresh_token"])
        assert unrelated.status_code == 200, unrelated.text


def test_code_replay_is_refused_and_revokes_its_tokens(grantline_server: GrantlineServer) -> None:
    server = grantline_server
    creds = server.credentials
    with clients_for(server) as (agent, person):
        pushed, code, first = dev_tokens(agent, person, server)
        assert first.status_code == 200, first.text

        replayed = exchange_code(
            agent,
            server,
            code,
            pushed,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
        )
        assert replayed.status_code == 400, replayed.text
        assert replayed.json()["error"] == "invalid_grant"
        assert "access_token" not in replayed.json()

        # RFC 6749 4.1.2: tokens issued from a replayed code are revoked.
        after = refresh(agent, server, first.json()["refresh_token"])
        assert after.status_code == 400, after.text
        assert after.json()["error"] == "invalid_grant"


def test_request_uri_cannot_be_used_twice(grantline_server: GrantlineServer) -> None:
    server = grantline_server
    creds = server.credentials
    with clients_for(server) as (agent, person):
        pushed = push_dev(agent, server)
        callback = sign_in_and_approve(person, server, creds.client_id, pushed.request_uri)
        assert "code" in query_of(callback)

        params = {"client_id": creds.client_id, "request_uri": pushed.request_uri}
        again = person.get("/authorize", params=params)
        assert again.status_code == 400, again.text
        assert "location" not in again.headers
        assert error_code_on_page(again) == "invalid_request_uri"

        # Not even from another browser.
        with browser(server) as stranger:
            elsewhere = stranger.get("/authorize", params=params)
        assert elsewhere.status_code == 400, elsewhere.text
        assert error_code_on_page(elsewhere) == "invalid_request_uri"


def test_request_uri_of_another_client_is_refused(grantline_server: GrantlineServer) -> None:
    server = grantline_server
    creds = server.credentials
    other = server.add_client(
        name="Other agent", redirect_uris=["https://other.example/callback"], require_par=True
    )
    assert other.client_id != creds.client_id
    assert other.client_secret
    assert other.redirect_uris == ("https://other.example/callback",)
    assert other.description["token_endpoint_auth_method"] == "client_secret_basic"

    with clients_for(server) as (agent, person):
        mine = push_dev(agent, server)
        refused = person.get(
            "/authorize", params={"client_id": other.client_id, "request_uri": mine.request_uri}
        )
        assert refused.status_code == 400, refused.text
        assert "location" not in refused.headers
        assert error_code_on_page(refused) == "invalid_request_uri"

        # The refusal changed nothing: the owner can still use its request_uri.
        owner = person.get(
            "/authorize", params={"client_id": creds.client_id, "request_uri": mine.request_uri}
        )
        assert owner.status_code == 303, owner.text

        # And the other way round, with a request the second client pushed itself.
        theirs = push(
            agent,
            server,
            client_id=other.client_id,
            client_secret=other.client_secret,
            redirect_uri="https://other.example/callback",
        )
        swapped = person.get(
            "/authorize", params={"client_id": creds.client_id, "request_uri": theirs.request_uri}
        )
        assert swapped.status_code == 400, swapped.text
        assert error_code_on_page(swapped) == "invalid_request_uri"


def test_audit_trail_records_the_flow_in_order(grantline_server_factory: ServerFactory) -> None:
    server = grantline_server_factory()
    creds = server.credentials
    with clients_for(server) as (agent, person):
        pushed, code, response = dev_tokens(agent, person, server)
    assert response.status_code == 200, response.text
    tokens = response.json()

    raw = server.cli("audit", "tail", "--json", "--lines", "1000")
    events = json_lines(raw)
    assert all(isinstance(e["type"], str) for e in events)
    flow = [e for e in events if e["type"] not in INIT_EVENTS]
    assert [e["type"] for e in flow] == [
        "pushed_request.accepted",
        "interaction.started",
        "user.login_succeeded",
        "consent.shown",
        "consent.decided",
        "code.issued",
        "token.issued",
    ]
    assert {e["client_id"] for e in flow} == {creds.client_id}
    assert len({e["request_id"] for e in flow}) == 1  # one stored request throughout
    by_type = {e["type"]: e for e in flow}
    assert by_type["consent.decided"]["data"]["decision"] == "approved"
    assert by_type["code.issued"]["grant_id"] == by_type["token.issued"]["grant_id"]
    assert by_type["user.login_succeeded"]["user_id"] == by_type["token.issued"]["user_id"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)

    # The trail carries no secret.
    secrets = {
        "request_uri": pushed.request_uri.removeprefix(REQUEST_URI_PREFIX),
        "code": code,
        "code_verifier": pushed.verifier,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "client_secret": creds.client_secret,
        "password": creds.password,
    }
    leaked = [name for name, value in secrets.items() if value in raw]
    assert leaked == []


def test_plain_requests_follow_the_server_par_setting(
    grantline_server: GrantlineServer, grantline_server_factory: ServerFactory
) -> None:
    relaxed = grantline_server_factory(require_par=False)
    with agent_client() as agent:
        metadata = agent.get(relaxed.url("/.well-known/oauth-authorization-server")).json()
    assert metadata["require_pushed_authorization_requests"] is False

    def plain_params(server: GrantlineServer, verifier: str) -> dict[str, str]:
        return {
            "client_id": server.credentials.client_id,
            "response_type": "code",
            "redirect_uri": server.dev_redirect_uri,
            "scope": "inbox.read",
            "state": "plain-state",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }

    # Where PAR is required (the default), a plain request is refused on a page.
    with browser(grantline_server) as person:
        refused = person.get("/authorize", params=plain_params(grantline_server, new_verifier()))
    assert refused.status_code == 400, refused.text
    assert "location" not in refused.headers
    assert error_code_on_page(refused) == "invalid_request"
    assert "pushed authorization request" in refused.text

    # Where it is not, the same request goes through to tokens.
    creds = relaxed.credentials
    verifier = new_verifier()
    with clients_for(relaxed) as (agent, person):
        opened = person.get("/authorize", params=plain_params(relaxed, verifier))
        assert opened.status_code == 303, opened.text
        interaction = opened.headers["location"]
        assert interaction.startswith("/interaction/")
        login_form = only_form(person.get(interaction).text)
        logged_in = person.post(
            login_form.action,
            data={
                "csrf_token": login_form.inputs["csrf_token"],
                "username": creds.username,
                "password": creds.password,
            },
        )
        assert logged_in.status_code == 303, logged_in.text
        consent_form = only_form(person.get(interaction).text)
        decided = person.post(
            consent_form.action,
            data={"csrf_token": consent_form.inputs["csrf_token"], "decision": "approve"},
        )
        assert decided.status_code == 303, decided.text
        answer = query_of(decided.headers["location"])
        assert answer["state"] == "plain-state"
        assert answer["iss"] == relaxed.issuer
        tokens = agent.post(
            relaxed.url("/token"),
            auth=(creds.client_id, creds.client_secret),
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": relaxed.dev_redirect_uri,
                "code_verifier": verifier,
            },
        )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "Bearer"

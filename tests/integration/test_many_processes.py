"""Two ``grantline serve`` processes on one instance and one database, on SQLite and on
PostgreSQL: a whole flow that alternates every request between them, and races between them
over one code, one refresh token and one interaction.

What must be shared between processes (stored requests, interactions, sessions, codes, tokens,
single-use state) has to live in the database; these tests fail if any of it lives in one
process's memory, or if single use holds only within one process.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cluster_support import (
    Cluster,
    Node,
    Post,
    post_all_at_once,
    running_cluster,
)
from tests.integration.support import HTTP_TIMEOUT, new_verifier, only_form, query_of, s256

pytestmark = pytest.mark.integration

#: Concurrent requests per race, split evenly between the two processes.
RACERS = 50
#: Enough for everything one test records (a race records about one event per racer).
AUDIT_LINES = 500


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def cluster(database_url: str | None, tmp_path: Path) -> Iterator[Cluster]:
    """Nodes ``a`` and ``b``: one data directory, one database, two ports. A traceback in
    either log, or a shutdown that was not graceful, fails the test."""
    with running_cluster(tmp_path, database_url=database_url) as running:
        yield running


def nodes_of(cluster: Cluster) -> tuple[Node, Node]:
    by_name = {node.name: node for node in cluster.nodes}
    return by_name["a"], by_name["b"]


# -- the steps of a flow, each on a chosen node -----------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A pushed request the person has opened: where the interaction is, on any node."""

    verifier: str
    state: str
    interaction: str  # the path, e.g. /interaction/TOKEN


def basic_auth(cluster: Cluster) -> tuple[str, str]:
    return cluster.credentials.client_id, cluster.credentials.client_secret


def push_at(agent: httpx.Client, node: Node, cluster: Cluster) -> tuple[str, str, str]:
    """POST /par on ``node``; (request_uri, verifier, state)."""
    verifier, state = new_verifier(), secrets.token_urlsafe(16)
    response = agent.post(
        node.url("/par"),
        auth=basic_auth(cluster),
        data={
            "response_type": "code",
            "redirect_uri": cluster.dev_redirect_uri,
            "scope": "inbox.read",
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["request_uri"]), verifier, state


def open_at(person: httpx.Client, node: Node, cluster: Cluster, request_uri: str) -> str:
    """GET /authorize on ``node``; the interaction path it redirects to."""
    opened = person.get(
        node.url("/authorize"),
        params={"client_id": cluster.credentials.client_id, "request_uri": request_uri},
    )
    assert opened.status_code == 303, opened.text
    interaction = str(opened.headers["location"])
    assert interaction.startswith("/interaction/"), interaction
    return interaction


def sign_in_at(person: httpx.Client, node: Node, cluster: Cluster, interaction: str) -> None:
    """GET the login page on one node, POST it on the other."""
    first, second = (node, other_node(cluster, node))
    login_page = person.get(first.url(interaction))
    assert login_page.status_code == 200, login_page.text
    login_form = only_form(login_page.text)
    assert login_form.action == f"{interaction}/login", "expected the login page"
    logged_in = person.post(
        second.url(login_form.action),
        data={
            "csrf_token": login_form.inputs["csrf_token"],
            "username": cluster.credentials.username,
            "password": cluster.credentials.password,
        },
    )
    assert logged_in.status_code == 303, logged_in.text
    assert logged_in.headers["location"] == interaction


def consent_form_at(person: httpx.Client, node: Node, interaction: str) -> dict[str, str]:
    """GET the consent page on ``node``; its form's inputs (the CSRF token)."""
    consent_page = person.get(node.url(interaction))
    assert consent_page.status_code == 200, consent_page.text
    form = only_form(consent_page.text)
    assert form.action == f"{interaction}/decision", "expected the consent page"
    return form.inputs


def other_node(cluster: Cluster, node: Node) -> Node:
    a, b = nodes_of(cluster)
    return b if node is a else a


def to_consent(agent: httpx.Client, person: httpx.Client, cluster: Cluster) -> tuple[Pending, str]:
    """Push, open, sign in and show the consent page, alternating nodes; (pending, csrf)."""
    a, b = nodes_of(cluster)
    request_uri, verifier, state = push_at(agent, a, cluster)
    interaction = open_at(person, b, cluster, request_uri)
    sign_in_at(person, a, cluster, interaction)
    csrf = consent_form_at(person, b, interaction)["csrf_token"]
    return Pending(verifier, state, interaction), csrf


def approve_at(person: httpx.Client, node: Node, pending: Pending, csrf: str) -> str:
    """POST the approval on ``node``; the code from the redirect."""
    decided = person.post(
        node.url(f"{pending.interaction}/decision"),
        data={"csrf_token": csrf, "decision": "approve"},
    )
    assert decided.status_code == 303, decided.text
    answer = query_of(decided.headers["location"])
    assert answer["state"] == pending.state
    return answer["code"]


def code_request(cluster: Cluster, code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": cluster.dev_redirect_uri,
    }


def refresh_request(refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


def clients() -> tuple[httpx.Client, httpx.Client]:
    """(agent, person): the client's back channel and the person's browser. Neither has a base
    URL: every request names its node, and the browser's cookies (host-scoped, both nodes are
    127.0.0.1) go to both."""
    agent = httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)
    person = httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)
    return agent, person


# -- what a race must end with ----------------------------------------------------------------


def describe(responses: list[httpx.Response]) -> str:
    """Each distinct (status, body start) with its count, for failure messages."""
    seen = Counter((r.status_code, r.text[:300]) for r in responses)
    return "\n".join(f"{n} x {status}: {body}" for (status, body), n in seen.most_common())


def one_winner(responses: list[httpx.Response], winning_status: int) -> httpx.Response:
    """The only response with ``winning_status``; fails, showing every outcome, otherwise."""
    winners = [r for r in responses if r.status_code == winning_status]
    assert len(winners) == 1, f"{len(winners)} winners:\n{describe(responses)}"
    return winners[0]


def assert_losers_refused(
    responses: list[httpx.Response], winner: httpx.Response, error: str
) -> None:
    """Every other response is 400 with ``error`` in its body (JSON or error page)."""
    losers = [r for r in responses if r is not winner]
    assert len(losers) == RACERS - 1
    unexpected = [r for r in losers if r.status_code != 400 or error not in r.text]
    assert not unexpected, f"expected 400 {error} for the others:\n{describe(responses)}"


def event_types(events: list[dict[str, Any]], **match: str) -> Counter[str]:
    return Counter(
        e["type"] for e in events if all(e.get(key) == value for key, value in match.items())
    )


def alternating_posts(
    cluster: Cluster, path: str, data: dict[str, str], auth: tuple[str, str] | None
) -> list[Post]:
    """RACERS identical POSTs of ``path``, alternately to node a and node b."""
    nodes = cycle(nodes_of(cluster))
    return [Post(next(nodes).url(path), data, auth) for _ in range(RACERS)]


# -- the tests --------------------------------------------------------------------------------


def test_a_flow_alternating_between_two_processes(cluster: Cluster) -> None:
    """Every request goes to the other process than the one before it."""
    a, b = nodes_of(cluster)
    auth = basic_auth(cluster)
    agent, person = clients()
    with agent, person:
        # PAR on A.
        request_uri, verifier, state = push_at(agent, a, cluster)
        # /authorize on B: the stored request is found, and the browser cookie is set.
        interaction = open_at(person, b, cluster, request_uri)
        assert "grantline_browser" in person.cookies
        # Login page on A, login on B: the CSRF token made by A is accepted by B.
        sign_in_at(person, a, cluster, interaction)
        assert "grantline_session" in person.cookies
        # Consent page on A: the session made by B is known to A.
        csrf = consent_form_at(person, a, interaction)["csrf_token"]
        # Decision on B: the consent A showed is on record.
        code = approve_at(person, b, Pending(verifier, state, interaction), csrf)

        # Token on A.
        issued = agent.post(a.url("/token"), auth=auth, data=code_request(cluster, code, verifier))
        assert issued.status_code == 200, issued.text
        tokens = issued.json()
        assert tokens["scope"] == "inbox.read"
        # Refresh on B.
        refreshed = agent.post(
            b.url("/token"), auth=auth, data=refresh_request(tokens["refresh_token"])
        )
        assert refreshed.status_code == 200, refreshed.text
        rotated = refreshed.json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        assert rotated["access_token"] != tokens["access_token"]
        # Introspection on A: the access token B minted is active.
        active = agent.post(
            a.url("/introspect"), auth=auth, data={"token": rotated["access_token"]}
        )
        assert active.status_code == 200, active.text
        description = active.json()
        assert description["active"] is True, description
        assert description["client_id"] == cluster.credentials.client_id
        assert description["scope"] == "inbox.read"
        assert description["iss"] == cluster.issuer
        # Revocation on B: the refresh token, so the whole grant.
        revoked = agent.post(
            b.url("/revoke"),
            auth=auth,
            data={"token": rotated["refresh_token"], "token_type_hint": "refresh_token"},
        )
        assert revoked.status_code == 200, revoked.text
        # Introspection on A again: the access token is inactive...
        after = agent.post(a.url("/introspect"), auth=auth, data={"token": rotated["access_token"]})
        assert after.status_code == 200, after.text
        assert after.json() == {"active": False}
        # ... and on B, so is the refresh token.
        after_refresh = agent.post(
            b.url("/introspect"), auth=auth, data={"token": rotated["refresh_token"]}
        )
        assert after_refresh.status_code == 200, after_refresh.text
        assert after_refresh.json() == {"active": False}

    events = cluster.audit_events(AUDIT_LINES)
    flow = [e for e in events if e["client_id"] == cluster.credentials.client_id]
    assert [e["type"] for e in flow] == [
        "client.registered",
        "pushed_request.accepted",
        "interaction.started",
        "user.login_succeeded",
        "consent.shown",
        "consent.decided",
        "code.issued",
        "token.issued",
        "token.refreshed",
        "grant.revoked",
    ]
    # One stored request throughout, then one grant (revocation names only the grant).
    assert len({e["request_id"] for e in flow[1:-1]}) == 1
    assert len({e["grant_id"] for e in flow[-4:]}) == 1


def test_one_code_redeemed_fifty_times_at_once_on_two_processes(cluster: Cluster) -> None:
    a, _ = nodes_of(cluster)
    agent, person = clients()
    with agent, person:
        pending, csrf = to_consent(agent, person, cluster)
        code = approve_at(person, a, pending, csrf)

    responses = post_all_at_once(
        alternating_posts(
            cluster, "/token", code_request(cluster, code, pending.verifier), basic_auth(cluster)
        )
    )

    winner = one_winner(responses, 200)
    assert winner.json()["access_token"]
    assert_losers_refused(responses, winner, '"invalid_grant"')
    events = cluster.audit_events(AUDIT_LINES)
    (issued,) = [e for e in events if e["type"] == "code.issued"]
    counts = event_types(events, grant_id=issued["grant_id"])
    assert counts["token.issued"] == 1, counts
    assert counts["code.replayed"] == RACERS - 1, counts
    assert set(counts) == {"code.issued", "token.issued", "code.replayed"}, counts


def test_one_refresh_token_rotated_fifty_times_at_once_on_two_processes(
    cluster: Cluster,
) -> None:
    a, b = nodes_of(cluster)
    auth = basic_auth(cluster)
    agent, person = clients()
    with agent, person:
        pending, csrf = to_consent(agent, person, cluster)
        code = approve_at(person, a, pending, csrf)
        issued = agent.post(
            b.url("/token"), auth=auth, data=code_request(cluster, code, pending.verifier)
        )
        assert issued.status_code == 200, issued.text
    refresh_token = issued.json()["refresh_token"]

    responses = post_all_at_once(
        alternating_posts(cluster, "/token", refresh_request(refresh_token), auth)
    )

    winner = one_winner(responses, 200)
    assert winner.json()["refresh_token"] != refresh_token
    assert_losers_refused(responses, winner, '"invalid_grant"')
    events = cluster.audit_events(AUDIT_LINES)
    (token_issued,) = [e for e in events if e["type"] == "token.issued"]
    counts = event_types(events, grant_id=token_issued["grant_id"])
    assert counts["token.refreshed"] == 1, counts
    # The losers that came after the first reuse found the grant already revoked.
    assert 1 <= counts["refresh_token.reused"] <= RACERS - 1, counts
    assert set(counts) == {"code.issued", "token.issued", "token.refreshed", "refresh_token.reused"}


def test_one_interaction_decided_fifty_times_at_once_on_two_processes(
    cluster: Cluster,
) -> None:
    agent, person = clients()
    with agent, person:
        pending, csrf = to_consent(agent, person, cluster)
        cookies = httpx.Cookies(person.cookies)

    responses = post_all_at_once(
        alternating_posts(
            cluster,
            f"{pending.interaction}/decision",
            {"csrf_token": csrf, "decision": "approve"},
            None,
        ),
        cookies=cookies,
    )

    winner = one_winner(responses, 303)
    answer = query_of(winner.headers["location"])
    assert answer["code"] and answer["state"] == pending.state
    assert not [r for r in responses if r is not winner and "location" in r.headers]
    # The losers found the interaction finished or the request used, and said so on a page.
    assert_losers_refused(responses, winner, "invalid_request")
    events = cluster.audit_events(AUDIT_LINES)
    (pushed,) = [e for e in events if e["type"] == "pushed_request.accepted"]
    counts = event_types(events, request_id=pushed["request_id"])
    assert counts["code.issued"] == 1, counts
    assert counts["consent.decided"] == 1, counts

"""Request budgets at /par, /token, /introspect and the sign-in form, from the caller's side:
the exact status, error, Retry-After and page, per client and per address."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from grantline.app import create_app
from grantline.models import Client, User
from grantline.ratelimit.config import EndpointLimits, Limit, RateLimitSettings
from grantline.ratelimit.guard import client_address
from grantline.ratelimit.limiter import RateLimiter
from grantline.ratelimit.stores import DatabaseCounters
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from tests.conftest import add_client
from tests.helpers import CLIENT_SECRET, ISSUER, Agent, FrozenClock, csrf_of

THREE_A_MINUTE = Limit(3, 60)  # a token back every 20 s

MakeHttp = Callable[..., httpx.AsyncClient]


def limited(settings: Settings, **endpoints: EndpointLimits) -> Settings:
    """Every endpoint unlimited but the ones given."""
    off = EndpointLimits(None, None)
    table = {name: endpoints.get(name, off) for name in ("par", "token", "introspect", "login")}
    return dataclasses.replace(settings, rate_limits=RateLimitSettings(endpoints=table))


def build(settings: Settings, store: SQLiteStore, clock: FrozenClock) -> Starlette:
    limiter = RateLimiter(DatabaseCounters(store), clock=clock)
    return create_app(settings, store, clock=clock, rate_limiter=limiter)


@pytest.fixture
async def make_http(
    store: SQLiteStore, clock: FrozenClock, client: Client, user: User
) -> AsyncIterator[MakeHttp]:
    """``make_http(settings, address="127.0.0.1")``: a client of an app with these limits."""
    opened: list[httpx.AsyncClient] = []
    apps: dict[int, Starlette] = {}

    def make(settings: Settings, address: str = "127.0.0.1") -> httpx.AsyncClient:
        app = apps.setdefault(id(settings), build(settings, store, clock))
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        http = httpx.AsyncClient(transport=transport, base_url=ISSUER)
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


def assert_rate_limited(response: httpx.Response, retry_after: str, whose: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == retry_after
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert f"Too many requests from this {whose}" in body["error_description"]


async def test_par_refuses_a_client_over_its_budget_until_a_token_comes_back(
    make_http: MakeHttp, settings: Settings, clock: FrozenClock
) -> None:
    http = make_http(limited(settings, par=EndpointLimits(THREE_A_MINUTE, None)))
    agent = Agent(http)
    for _ in range(3):
        await agent.push()
    refused = await agent.push_raw(agent.params("v" * 43))
    assert_rate_limited(refused, "20", "client")
    clock.advance(19)
    assert_rate_limited(await agent.push_raw(agent.params("v" * 43)), "1", "client")
    clock.advance(1)
    await agent.push()


async def test_token_refuses_a_client_over_its_budget(
    make_http: MakeHttp, settings: Settings
) -> None:
    http = make_http(limited(settings, token=EndpointLimits(THREE_A_MINUTE, None)))
    agent = Agent(http)
    bogus = {"grant_type": "refresh_token", "refresh_token": "not-a-token"}
    for _ in range(3):
        # Refused grants are still requests the client made.
        assert (await agent.token(bogus)).json()["error"] == "invalid_grant"
    assert_rate_limited(await agent.token(bogus), "20", "client")


async def test_introspect_refuses_a_client_over_its_budget(
    make_http: MakeHttp, settings: Settings
) -> None:
    http = make_http(limited(settings, introspect=EndpointLimits(THREE_A_MINUTE, None)))
    auth = ("agent", CLIENT_SECRET)
    for _ in range(3):
        answer = await http.post("/introspect", data={"token": "unknown"}, auth=auth)
        assert answer.json() == {"active": False}
    refused = await http.post("/introspect", data={"token": "unknown"}, auth=auth)
    assert_rate_limited(refused, "20", "client")


async def test_one_address_shares_its_budget_across_clients_and_others_keep_theirs(
    make_http: MakeHttp, settings: Settings, store: SQLiteStore
) -> None:
    await add_client(store, client_id="other")
    limits = limited(settings, par=EndpointLimits(None, THREE_A_MINUTE))
    here = make_http(limits)
    agent, other = Agent(here, "agent"), Agent(here, "other")
    await agent.push()
    await agent.push()
    await other.push()
    assert_rate_limited(await other.push_raw(other.params("v" * 43)), "20", "address")
    # Even a request that would fail authentication spends from, and is refused by, the
    # address budget, before anything is looked up.
    unknown = await here.post("/par", data={"client_id": "nobody"})
    assert_rate_limited(unknown, "20", "address")
    elsewhere = Agent(make_http(limits, address="192.0.2.7"))
    await elsewhere.push()


async def test_nobody_spends_a_client_budget_by_claiming_its_client_id(
    make_http: MakeHttp, settings: Settings, store: SQLiteStore
) -> None:
    http = make_http(limited(settings, par=EndpointLimits(THREE_A_MINUTE, None)))
    victim = Agent(http)
    attacker = Agent(http, secret="wrong-secret")
    for _ in range(5):
        failed = await attacker.push_raw(attacker.params("v" * 43))
        assert failed.status_code == 401
        assert failed.json()["error"] == "invalid_client"
    for _ in range(3):
        await victim.push()
    # Over budget, the claimed client_id is refused before its credentials are checked: no
    # authentication failure is recorded for this attempt.
    async with store.reader() as tx:
        before = [e.type for e in await tx.tail(100)].count("client.authentication_failed")
    assert_rate_limited(await attacker.push_raw(attacker.params("v" * 43)), "20", "client")
    async with store.reader() as tx:
        after = [e.type for e in await tx.tail(100)].count("client.authentication_failed")
    assert (before, after) == (5, 5)


async def test_the_sign_in_form_shows_an_error_page_over_the_address_budget(
    make_http: MakeHttp, settings: Settings
) -> None:
    http = make_http(limited(settings, login=EndpointLimits(None, Limit(2, 60))))
    agent = Agent(http)
    pushed = await agent.push()
    interaction = await agent.open(pushed.request_uri)
    assert (await agent.login(interaction, password="wrong-1")).status_code == 400
    assert (await agent.login(interaction, password="wrong-2")).status_code == 400
    page = await http.get(interaction)
    refused = await http.post(
        f"{interaction}/login",
        data={"csrf_token": csrf_of(page.text), "username": "alice", "password": "x"},
    )
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["content-type"].startswith("text/html")
    assert "temporarily_unavailable" in refused.text
    assert "Too many requests from this address; retry in 30 seconds." in refused.text


async def test_the_sign_in_form_has_a_budget_per_client(
    make_http: MakeHttp, settings: Settings
) -> None:
    http = make_http(limited(settings, login=EndpointLimits(Limit(1, 60), None)))
    agent = Agent(http)
    interaction = await agent.open((await agent.push()).request_uri)
    assert (await agent.login(interaction, password="wrong-1")).status_code == 400
    refused = await agent.login(interaction, password="wrong-2")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert "Too many requests from this client" in refused.text


async def test_forged_sign_in_posts_do_not_spend_the_client_budget(
    make_http: MakeHttp, settings: Settings
) -> None:
    http = make_http(limited(settings, login=EndpointLimits(Limit(1, 60), None)))
    agent = Agent(http)
    interaction = await agent.open((await agent.push()).request_uri)
    for _ in range(5):
        forged = await http.post(
            f"{interaction}/login",
            data={"csrf_token": "forged", "username": "alice", "password": "guess"},
        )
        assert forged.status_code == 403, forged.text
        assert "invalid_request" in forged.text
    # The one real attempt the budget allows is still there for the person.
    assert (await agent.login(interaction)).status_code == 303


@pytest.mark.parametrize(
    ("peer", "budget"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_host_spends_one_budget_for_its_whole_64(peer: str, budget: str) -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (peer, 1)}
    assert client_address(Request(scope)) == budget


async def test_disabled_limits_refuse_nothing(make_http: MakeHttp, settings: Settings) -> None:
    tight = limited(settings, par=EndpointLimits(Limit(1, 3600), Limit(1, 3600)))
    off = dataclasses.replace(
        tight, rate_limits=dataclasses.replace(tight.rate_limits, enabled=False)
    )
    agent = Agent(make_http(off))
    for _ in range(5):
        await agent.push()


async def test_refusals_are_counted_in_the_metrics(make_http: MakeHttp, settings: Settings) -> None:
    http = make_http(limited(settings, par=EndpointLimits(None, Limit(1, 60))))
    agent = Agent(http)
    await agent.push()
    assert (await agent.push_raw(agent.params("v" * 43))).status_code == 429
    metrics = (await http.get("/metrics")).text
    assert (
        'grantline_refusals_total{endpoint="pushed_authorization_request",'
        'error="temporarily_unavailable"}'
    ) in metrics

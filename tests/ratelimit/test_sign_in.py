"""Failed sign-ins from the attacker's side: an account's wait grows and expires, an address
guessing across accounts waits too, a success clears its address, and the person's own address
is not kept out by someone guessing elsewhere. Time is the frozen clock's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from grantline.models import AuditEvent, Client, User
from grantline.ratelimit.config import SignInPolicy
from grantline.ratelimit.sign_in import sign_in_wait
from grantline.storage.sql import SQLiteStore
from tests.helpers import ISSUER, PASSWORD, USERNAME, Agent, FrozenClock

POLICY = SignInPolicy()


@pytest.fixture
async def browsers(app: Starlette, client: Client, user: User) -> AsyncIterator[dict[str, Agent]]:
    """An agent (client and browser) at each of three addresses, on one server."""
    opened: dict[str, Agent] = {}
    addresses = {"home": "198.51.100.1", "attacker": "203.0.113.9", "cafe": "192.0.2.44"}
    for name, address in addresses.items():
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        opened[name] = Agent(httpx.AsyncClient(transport=transport, base_url=ISSUER))
    yield opened
    for agent in opened.values():
        await agent.http.aclose()


async def sign_in(agent: Agent, password: str, username: str = USERNAME) -> httpx.Response:
    """One attempt on a fresh sign-in page (a page closes after five wrong passwords)."""
    interaction = await agent.open((await agent.push()).request_uri)
    return await agent.login(interaction, username=username, password=password)


def assert_throttled(response: httpx.Response, seconds: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(seconds)
    assert response.headers["content-type"].startswith("text/html")
    assert "temporarily_unavailable" in response.text
    assert f"Too many failed sign-in attempts. Try again in {seconds} seconds." in response.text


async def throttled_events(store: SQLiteStore) -> list[AuditEvent]:
    async with store.reader() as tx:
        return [e for e in await tx.tail(500) if e.type == "user.login_throttled"]


async def test_an_account_waits_after_five_failures_even_with_the_right_password(
    browsers: dict[str, Agent], clock: FrozenClock, store: SQLiteStore
) -> None:
    attacker = browsers["attacker"]
    for n in range(5):
        assert (await sign_in(attacker, f"guess-{n}")).status_code == 400
    # The password is not even checked while the account waits.
    assert_throttled(await sign_in(attacker, PASSWORD), 5)
    clock.advance(4)
    assert_throttled(await sign_in(attacker, PASSWORD), 1)
    clock.advance(1)
    assert (await sign_in(attacker, PASSWORD)).status_code == 303
    (first, second) = await throttled_events(store)
    assert first.data["throttled_by"] == "account"
    assert first.data["retry_after"] == 5
    assert first.client_id == "agent" and first.user_id is not None
    assert USERNAME not in str(first.data) and len(first.data["username_digest"]) == 32
    assert second.data["retry_after"] == 1


async def test_each_further_failure_doubles_the_wait_up_to_the_cap(
    browsers: dict[str, Agent], clock: FrozenClock
) -> None:
    attacker = browsers["attacker"]
    for n in range(5):
        await sign_in(attacker, f"guess-{n}")
    waits = []
    for n in range(7):
        refused = await sign_in(attacker, "still-guessing")
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        waits.append(wait)
        clock.advance(wait)
        assert (await sign_in(attacker, f"late-guess-{n}")).status_code == 400
    assert waits == [5, 10, 20, 40, 80, 160, 300]
    assert_throttled(await sign_in(attacker, "again"), 300)


async def test_an_accounts_count_is_forgotten_after_the_failure_window(
    browsers: dict[str, Agent], clock: FrozenClock
) -> None:
    attacker = browsers["attacker"]
    for n in range(5):
        await sign_in(attacker, f"guess-{n}")
    clock.advance(POLICY.failure_window)
    # A fresh count: four more failures before any wait.
    for n in range(4):
        assert (await sign_in(attacker, f"later-{n}")).status_code == 400
    assert (await sign_in(attacker, PASSWORD)).status_code == 303


async def test_unknown_accounts_are_throttled_alike(
    browsers: dict[str, Agent],
) -> None:
    attacker = browsers["attacker"]
    for n in range(5):
        assert (await sign_in(attacker, f"guess-{n}", username="nobody")).status_code == 400
    assert_throttled(await sign_in(attacker, "guess", username="nobody"), 5)


async def test_guessing_elsewhere_does_not_keep_the_person_out_from_their_own_address(
    browsers: dict[str, Agent], clock: FrozenClock
) -> None:
    home, attacker, cafe = browsers["home"], browsers["attacker"], browsers["cafe"]
    assert (await sign_in(home, PASSWORD)).status_code == 303
    clock.advance(3600)
    for n in range(8):
        await sign_in(attacker, f"guess-{n}")
        clock.advance(1)
    assert (await sign_in(attacker, "guess")).status_code == 429
    # A new address waits like the attacker does; the address the person signed in from does
    # not, and a wrong password there is only a failure.
    assert (await sign_in(cafe, PASSWORD)).status_code == 429
    assert (await sign_in(home, "typo")).status_code == 400
    assert (await sign_in(home, PASSWORD)).status_code == 303


async def test_an_address_guessing_across_accounts_waits_longer(
    browsers: dict[str, Agent], clock: FrozenClock
) -> None:
    attacker, home = browsers["attacker"], browsers["home"]
    # One guess per account: no account reaches its threshold, the address does.
    for n in range(10):
        assert (await sign_in(attacker, "Winter2024!", username=f"user{n}")).status_code == 400
    assert_throttled(await sign_in(attacker, PASSWORD), 5)
    # Other addresses are not affected.
    assert (await sign_in(home, PASSWORD)).status_code == 303
    for n in range(10, 16):
        clock.advance(int((await sign_in(attacker, "x", username="y")).headers["retry-after"]))
        assert (await sign_in(attacker, "Winter2024!", username=f"user{n}")).status_code == 400
    # 5, 10, 20, 40, 80, 160, then the address cap is above the account's.
    assert_throttled(await sign_in(attacker, "x", username="y"), 320)


async def test_a_success_does_not_reset_the_addresses_count(
    browsers: dict[str, Agent],
) -> None:
    # An attacker with an account of their own signs in between guesses at other accounts.
    cafe = browsers["cafe"]
    for n in range(9):
        assert (await sign_in(cafe, "typo", username=f"colleague{n}")).status_code == 400
    assert (await sign_in(cafe, PASSWORD)).status_code == 303
    assert (await sign_in(cafe, "typo", username="colleague9")).status_code == 400
    # The address's tenth failure counts: the next guess at anyone waits.
    assert_throttled(await sign_in(cafe, "typo", username="colleague10"), 5)
    # The person who signed in from here before is not kept out by it.
    assert (await sign_in(cafe, PASSWORD)).status_code == 303


@pytest.mark.parametrize(
    ("counters", "expected"),
    [
        ({}, ("", 0)),
        ({"acct": (4, 1000)}, ("", 0)),
        ({"acct": (5, 1000)}, ("account", 5)),
        ({"acct": (5, 996)}, ("account", 1)),
        ({"acct": (5, 995)}, ("", 0)),
        ({"acct": (30, 1000)}, ("account", 300)),
        ({"acct": (30, 1000), "known": (0, 10)}, ("", 0)),
        ({"addr": (10, 1000), "known": (0, 10)}, ("", 0)),
        ({"addr": (10, 1000)}, ("address", 5)),
        ({"addr": (30, 1000), "acct": (30, 1000)}, ("address", 900)),
    ],
)
def test_the_wait_is_the_longer_of_account_and_address(
    counters: dict[str, tuple[int, int]], expected: tuple[str, int]
) -> None:
    assert (
        sign_in_wait(POLICY, counters, account="acct", address="addr", known="known", now=1000)
        == expected
    )

"""Contract tests for the SQLite store: every documented semantic of ``grantline.storage``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from grantline.models import (
    AuditEvent,
    AuthorizationCode,
    AuthorizationRequest,
    Client,
    Grant,
    Interaction,
    Session,
    StoredRequest,
    Token,
    User,
)
from grantline.storage import StorageUnavailable
from grantline.storage.sql import SQLiteStore, SQLiteTransaction

NOW = 1_700_000_000


class Boom(Exception):
    """Raised inside a transaction to force a rollback."""


# -- record factories ----------------------------------------------------------------------


def make_client(client_id: str = "agent", **overrides: object) -> Client:
    values: dict[str, object] = {
        "client_id": client_id,
        "name": "Invoice Agent",
        "auth_method": "client_secret_basic",
        "redirect_uris": ("https://agent.example/callback", "https://agent.example/other"),
        "scopes": ("inbox.read", "invoices.pay"),
        "require_par": False,
        "par_lifetime": 30,
        "secret_digest": "d" * 64,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return Client(**values)  # type: ignore[arg-type]


def make_user(username: str = "alice", user_id: str | None = None) -> User:
    return User(user_id or f"id-{username}", username, f"$argon2id$hash-of-{username}", NOW)


def make_request(
    request_id: str = "req-1", client_id: str = "agent", **overrides: object
) -> StoredRequest:
    values: dict[str, object] = {
        "request_id": request_id,
        "client_id": client_id,
        "request": AuthorizationRequest(
            client_id=client_id,
            redirect_uri="https://agent.example/callback",
            scopes=("inbox.read", "invoices.pay"),
            code_challenge="c" * 43,
            code_challenge_method="S256",
            state="state-123",
        ),
        "raw_params": {"scope": "inbox.read invoices.pay", "state": "state-123"},
        "pushed": True,
        "created_at": NOW,
        "expires_at": NOW + 60,
    }
    values.update(overrides)
    return StoredRequest(**values)  # type: ignore[arg-type]


def make_interaction(interaction_id: str = "int-1", **overrides: object) -> Interaction:
    values: dict[str, object] = {
        "interaction_id": interaction_id,
        "request_id": "req-1",
        "client_id": "agent",
        "browser_digest": "b" * 64,
        "created_at": NOW,
        "expires_at": NOW + 600,
    }
    values.update(overrides)
    return Interaction(**values)  # type: ignore[arg-type]


def make_grant(grant_id: str = "grant-1", **overrides: object) -> Grant:
    values: dict[str, object] = {
        "grant_id": grant_id,
        "client_id": "agent",
        "user_id": "id-alice",
        "scopes": ("inbox.read",),
        "request_id": "req-1",
        "created_at": NOW,
    }
    values.update(overrides)
    return Grant(**values)  # type: ignore[arg-type]


def make_code(code_digest: str = "code-1", **overrides: object) -> AuthorizationCode:
    values: dict[str, object] = {
        "code_digest": code_digest,
        "grant_id": "grant-1",
        "client_id": "agent",
        "redirect_uri": "https://agent.example/callback",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
        "created_at": NOW,
        "expires_at": NOW + 60,
    }
    values.update(overrides)
    return AuthorizationCode(**values)  # type: ignore[arg-type]


def make_token(token_digest: str = "tok-1", **overrides: object) -> Token:  # noqa: S107
    values: dict[str, object] = {
        "token_digest": token_digest,
        "kind": "refresh_token",
        "grant_id": "grant-1",
        "client_id": "agent",
        "scopes": ("inbox.read", "invoices.pay"),
        "created_at": NOW,
        "expires_at": NOW + 3600,
    }
    values.update(overrides)
    return Token(**values)  # type: ignore[arg-type]


# -- clients -------------------------------------------------------------------------------


async def test_client_round_trips_with_every_field(store: SQLiteStore) -> None:
    client = make_client()
    async with store.transaction() as tx:
        await tx.add_client(client)
    async with store.reader() as tx:
        assert await tx.get_client("agent") == client


async def test_client_with_default_policy_round_trips(store: SQLiteStore) -> None:
    client = Client(
        client_id="public",
        name="Public App",
        auth_method="none",
        redirect_uris=("com.example.app:/cb",),
    )
    async with store.transaction() as tx:
        await tx.add_client(client)
    async with store.reader() as tx:
        got = await tx.get_client("public")
    assert got == client
    assert got is not None
    assert got.require_par is None
    assert got.par_lifetime is None
    assert got.secret_digest is None
    assert got.scopes == ()


async def test_unknown_client_is_none(store: SQLiteStore) -> None:
    async with store.reader() as tx:
        assert await tx.get_client("nobody") is None


async def test_list_clients_is_ordered_by_client_id(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        for client_id in ("charlie", "alpha", "bravo"):
            await tx.add_client(make_client(client_id))
    async with store.reader() as tx:
        listed = await tx.list_clients()
    assert [c.client_id for c in listed] == ["alpha", "bravo", "charlie"]
    assert listed[0] == make_client("alpha")


async def test_duplicate_client_id_raises_key_error(store: SQLiteStore) -> None:
    original = make_client()
    async with store.transaction() as tx:
        await tx.add_client(original)
    with pytest.raises(KeyError):
        async with store.transaction() as tx:
            await tx.add_client(make_client(name="Impostor", secret_digest="e" * 64))
    async with store.reader() as tx:
        assert await tx.get_client("agent") == original


async def test_update_client_replaces_the_policy(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_client(make_client())
    updated = make_client(
        name="Renamed",
        auth_method="client_secret_post",
        redirect_uris=("https://agent.example/new",),
        scopes=("deployments.write",),
        require_par=True,
        par_lifetime=600,
        secret_digest="f" * 64,
        updated_at=NOW + 10,
    )
    async with store.transaction() as tx:
        await tx.update_client(updated)
    async with store.reader() as tx:
        assert await tx.get_client("agent") == updated


async def test_update_client_can_clear_the_policy(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_client(make_client())
    cleared = make_client(require_par=None, par_lifetime=None, scopes=())
    async with store.transaction() as tx:
        await tx.update_client(cleared)
    async with store.reader() as tx:
        got = await tx.get_client("agent")
    assert got is not None
    assert (got.require_par, got.par_lifetime, got.scopes) == (None, None, ())


async def test_remove_client_is_true_only_when_something_was_removed(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_client(make_client())
        await tx.add_client(make_client("other"))
    async with store.transaction() as tx:
        await tx.add_grant(Grant("g-agent", "agent", "u", ("inbox.read",), "req", NOW))
        await tx.add_grant(Grant("g-other", "other", "u", ("inbox.read",), "req", NOW))
        await tx.add_token(make_token("t-agent", grant_id="g-agent"))
    async with store.transaction() as tx:
        assert await tx.remove_client("agent", NOW + 1) == 1
    async with store.transaction() as tx:
        assert await tx.remove_client("agent", NOW + 2) is None
        assert await tx.remove_client("never-registered", NOW + 2) is None
    async with store.reader() as tx:
        # Removing a client revokes what it held, so re-registering its id brings nothing back.
        revoked = await tx.get_grant("g-agent")
        kept = await tx.get_grant("g-other")
        token = await tx.get_token("t-agent")
    assert revoked is not None and revoked.revoked_at == NOW + 1
    assert kept is not None and kept.revoked_at is None
    assert token is not None and token.revoked_at == NOW + 1
    async with store.reader() as tx:
        assert await tx.get_client("agent") is None
        assert [c.client_id for c in await tx.list_clients()] == ["other"]


# -- users ---------------------------------------------------------------------------------


async def test_user_round_trips_by_id_and_username(store: SQLiteStore) -> None:
    user = make_user()
    async with store.transaction() as tx:
        await tx.add_user(user)
    async with store.reader() as tx:
        assert await tx.get_user("id-alice") == user
        assert await tx.get_user_by_username("alice") == user
        assert await tx.get_user("id-bob") is None
        assert await tx.get_user_by_username("bob") is None


async def test_list_users_is_ordered_by_username(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        for name in ("carol", "alice", "bob"):
            await tx.add_user(make_user(name))
    async with store.reader() as tx:
        users = await tx.list_users()
    assert [u.username for u in users] == ["alice", "bob", "carol"]
    assert users[1] == make_user("bob")


async def test_duplicate_username_raises_key_error(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_user(make_user("alice", user_id="first"))
    with pytest.raises(KeyError):
        async with store.transaction() as tx:
            await tx.add_user(make_user("alice", user_id="second"))
    async with store.reader() as tx:
        assert [u.user_id for u in await tx.list_users()] == ["first"]


async def test_remove_user_returns_the_user_and_ends_their_sessions(store: SQLiteStore) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    async with store.transaction() as tx:
        await tx.add_user(alice)
        await tx.add_user(bob)
        await tx.add_session(Session("s-alice-1", alice.user_id, NOW, NOW + 3600))
        await tx.add_session(Session("s-alice-2", alice.user_id, NOW, NOW + 3600))
        await tx.add_session(Session("s-bob", bob.user_id, NOW, NOW + 3600))
    async with store.transaction() as tx:
        await tx.add_grant(Grant("g-alice", "agent", alice.user_id, (), "req", NOW))
    async with store.transaction() as tx:
        assert await tx.remove_user("alice", NOW + 1) == (alice, 1)
    async with store.reader() as tx:
        grant = await tx.get_grant("g-alice")
        assert grant is not None and grant.revoked_at == NOW + 1
        assert await tx.get_user_by_username("alice") is None
        assert await tx.get_session("s-alice-1", NOW) is None
        assert await tx.get_session("s-alice-2", NOW) is None
        assert await tx.get_session("s-bob", NOW) == Session("s-bob", bob.user_id, NOW, NOW + 3600)
        assert await tx.get_user_by_username("bob") == bob
    async with store.transaction() as tx:
        assert await tx.remove_user("alice", NOW) is None
        assert await tx.remove_user("nobody", NOW) is None


# -- authorization requests ------------------------------------------------------------------


@pytest.mark.parametrize("pushed", [True, False])
async def test_request_round_trips(store: SQLiteStore, pushed: bool) -> None:
    request = make_request(pushed=pushed)
    async with store.transaction() as tx:
        await tx.add_request(request)
    async with store.reader() as tx:
        got = await tx.get_request("req-1")
    assert got == request
    assert got is not None
    assert got.pushed is pushed
    assert got.first_presented_at is None
    assert got.consumed_at is None


async def test_request_without_state_round_trips(store: SQLiteStore) -> None:
    request = make_request(
        request=AuthorizationRequest(
            client_id="agent",
            redirect_uri="https://agent.example/callback",
            scopes=("inbox.read",),
            code_challenge="x" * 43,
            code_challenge_method="S256",
        ),
        raw_params={},
    )
    async with store.transaction() as tx:
        await tx.add_request(request)
    async with store.reader() as tx:
        got = await tx.get_request("req-1")
    assert got == request
    assert got is not None
    assert got.request.state is None


async def test_unknown_request_is_none(store: SQLiteStore) -> None:
    async with store.reader() as tx:
        assert await tx.get_request("nope") is None


async def test_mark_presented_binds_the_first_browser(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_request(make_request())
        assert await tx.mark_presented("req-1", NOW + 5, "browser-a") is True
    async with store.transaction() as tx:
        assert await tx.mark_presented("req-1", NOW + 9, "browser-a") is True  # a reload
        assert await tx.mark_presented("req-1", NOW + 9, "browser-b") is False
    async with store.reader() as tx:
        got = await tx.get_request("req-1")
    assert got is not None
    assert got.first_presented_at == NOW + 5
    assert got.presented_browser == "browser-a"


async def test_consume_request_succeeds_once(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_request(make_request())
    async with store.transaction() as tx:
        assert await tx.consume_request("req-1", "agent", NOW + 1) is True
    async with store.transaction() as tx:
        assert await tx.consume_request("req-1", "agent", NOW + 2) is False
    async with store.reader() as tx:
        got = await tx.get_request("req-1")
    assert got is not None
    assert got.consumed_at == NOW + 1
    assert not got.is_presentable(NOW + 1)


async def test_consume_request_for_another_client_fails_and_leaves_it_unused(
    store: SQLiteStore,
) -> None:
    async with store.transaction() as tx:
        await tx.add_request(make_request())
    async with store.transaction() as tx:
        assert await tx.consume_request("req-1", "intruder", NOW) is False
    async with store.reader() as tx:
        got = await tx.get_request("req-1")
    assert got is not None
    assert got.consumed_at is None
    async with store.transaction() as tx:
        assert await tx.consume_request("req-1", "agent", NOW) is True


async def test_consume_unknown_request_is_false(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        assert await tx.consume_request("never-pushed", "agent", NOW) is False


# -- interactions --------------------------------------------------------------------------


async def test_interaction_round_trips_and_records_user_and_consent(store: SQLiteStore) -> None:
    interaction = make_interaction()
    async with store.transaction() as tx:
        await tx.add_interaction(interaction)
    async with store.reader() as tx:
        assert await tx.get_interaction("int-1") == interaction
        assert await tx.get_interaction("unknown") is None
    async with store.transaction() as tx:
        await tx.set_interaction_user("int-1", "id-alice")
        await tx.set_consent_shown("int-1", "consent-sha")
    async with store.reader() as tx:
        got = await tx.get_interaction("int-1")
    assert got is not None
    assert got.user_id == "id-alice"
    assert got.consent_digest == "consent-sha"
    assert got.completed_at is None
    assert got.is_open(NOW)


async def test_complete_interaction_succeeds_once(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_interaction(make_interaction())
    async with store.transaction() as tx:
        assert await tx.complete_interaction("int-1", NOW + 10) is True
    async with store.transaction() as tx:
        assert await tx.complete_interaction("int-1", NOW + 11) is False
    async with store.reader() as tx:
        got = await tx.get_interaction("int-1")
    assert got is not None
    assert got.completed_at == NOW + 10


@pytest.mark.parametrize("late", [0, 1, 3600])
async def test_complete_interaction_fails_once_expired(store: SQLiteStore, late: int) -> None:
    interaction = make_interaction(expires_at=NOW + 600)
    async with store.transaction() as tx:
        await tx.add_interaction(interaction)
    async with store.transaction() as tx:
        assert await tx.complete_interaction("int-1", interaction.expires_at + late) is False
    async with store.reader() as tx:
        got = await tx.get_interaction("int-1")
    assert got is not None
    assert got.completed_at is None


async def test_complete_interaction_just_before_expiry_succeeds(store: SQLiteStore) -> None:
    interaction = make_interaction(expires_at=NOW + 600)
    async with store.transaction() as tx:
        await tx.add_interaction(interaction)
        assert await tx.complete_interaction("int-1", interaction.expires_at - 1) is True


async def test_complete_unknown_interaction_is_false(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        assert await tx.complete_interaction("unknown", NOW) is False


# -- sessions ------------------------------------------------------------------------------


async def test_session_is_returned_until_it_expires(store: SQLiteStore) -> None:
    session = Session("sess-1", "id-alice", NOW, NOW + 100)
    async with store.transaction() as tx:
        await tx.add_session(session)
    async with store.reader() as tx:
        assert await tx.get_session("sess-1", NOW) == session
        assert await tx.get_session("sess-1", NOW + 99) == session
        assert await tx.get_session("sess-1", NOW + 100) is None
        assert await tx.get_session("sess-1", NOW + 101) is None
        assert await tx.get_session("unknown", NOW) is None


async def test_remove_session(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_session(Session("sess-1", "id-alice", NOW, NOW + 100))
        await tx.add_session(Session("sess-2", "id-alice", NOW, NOW + 100))
    async with store.transaction() as tx:
        await tx.remove_session("sess-1")
    async with store.reader() as tx:
        assert await tx.get_session("sess-1", NOW) is None
        assert await tx.get_session("sess-2", NOW) is not None


# -- grants --------------------------------------------------------------------------------


async def test_grant_round_trips(store: SQLiteStore) -> None:
    grant = make_grant(scopes=("inbox.read", "invoices.pay"))
    async with store.transaction() as tx:
        await tx.add_grant(grant)
    async with store.reader() as tx:
        assert await tx.get_grant("grant-1") == grant
        assert await tx.get_grant("unknown") is None


async def test_revoke_grant_revokes_every_token_and_is_true_only_once(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_grant(make_grant("grant-1"))
        await tx.add_grant(make_grant("grant-2"))
        await tx.add_token(make_token("access-1", kind="access_token"))
        await tx.add_token(make_token("refresh-1"))
        await tx.add_token(make_token("refresh-old", revoked_at=NOW - 5))
        await tx.add_token(make_token("other-grant", grant_id="grant-2"))
    async with store.transaction() as tx:
        assert await tx.revoke_grant("grant-1", NOW + 1) is True
    async with store.transaction() as tx:
        assert await tx.revoke_grant("grant-1", NOW + 2) is False
    async with store.reader() as tx:
        grant = await tx.get_grant("grant-1")
        assert grant is not None
        assert grant.revoked_at == NOW + 1
        for digest in ("access-1", "refresh-1"):
            token = await tx.get_token(digest)
            assert token is not None
            assert token.revoked_at == NOW + 1, digest
        old = await tx.get_token("refresh-old")
        assert old is not None
        assert old.revoked_at == NOW - 5
        other = await tx.get_token("other-grant")
        assert other is not None
        assert other.revoked_at is None
        other_grant = await tx.get_grant("grant-2")
        assert other_grant is not None
        assert other_grant.revoked_at is None


async def test_revoke_unknown_grant_is_false(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        assert await tx.revoke_grant("unknown", NOW) is False


# -- authorization codes -------------------------------------------------------------------


async def test_code_round_trips(store: SQLiteStore) -> None:
    code = make_code()
    async with store.transaction() as tx:
        await tx.add_code(code)
    async with store.reader() as tx:
        assert await tx.get_code("code-1") == code
        assert await tx.get_code("unknown") is None


async def test_consume_code_succeeds_once(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_code(make_code())
    async with store.transaction() as tx:
        assert await tx.consume_code("code-1", "agent", NOW + 1) is True
    async with store.transaction() as tx:
        assert await tx.consume_code("code-1", "agent", NOW + 2) is False
    async with store.reader() as tx:
        got = await tx.get_code("code-1")
    assert got is not None
    assert got.consumed_at == NOW + 1


async def test_consume_code_for_another_client_fails_and_leaves_it_unused(
    store: SQLiteStore,
) -> None:
    async with store.transaction() as tx:
        await tx.add_code(make_code())
        assert await tx.consume_code("code-1", "intruder", NOW) is False
    async with store.reader() as tx:
        got = await tx.get_code("code-1")
    assert got is not None
    assert got.consumed_at is None
    async with store.transaction() as tx:
        assert await tx.consume_code("code-1", "agent", NOW) is True
        assert await tx.consume_code("unknown", "agent", NOW) is False


# -- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
async def test_token_round_trips(store: SQLiteStore, kind: str) -> None:
    token = make_token(kind=kind)
    async with store.transaction() as tx:
        await tx.add_token(token)
    async with store.reader() as tx:
        assert await tx.get_token("tok-1") == token
        assert await tx.get_token("unknown") is None


async def test_consume_token_succeeds_once(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_token(make_token())
    async with store.transaction() as tx:
        assert await tx.consume_token("tok-1", "agent", NOW + 1) is True
    async with store.transaction() as tx:
        assert await tx.consume_token("tok-1", "agent", NOW + 2) is False
    async with store.reader() as tx:
        got = await tx.get_token("tok-1")
    assert got is not None
    assert got.consumed_at == NOW + 1


async def test_consume_token_for_another_client_fails_and_leaves_it_unused(
    store: SQLiteStore,
) -> None:
    async with store.transaction() as tx:
        await tx.add_token(make_token())
        assert await tx.consume_token("tok-1", "intruder", NOW) is False
    async with store.reader() as tx:
        got = await tx.get_token("tok-1")
    assert got is not None
    assert got.consumed_at is None


async def test_consume_revoked_token_is_false(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_token(make_token("revoked", revoked_at=NOW - 1))
        await tx.add_grant(make_grant())
        await tx.add_token(make_token("under-grant"))
    async with store.transaction() as tx:
        assert await tx.consume_token("revoked", "agent", NOW) is False
        assert await tx.revoke_grant("grant-1", NOW) is True
        assert await tx.consume_token("under-grant", "agent", NOW) is False
    async with store.reader() as tx:
        for digest in ("revoked", "under-grant"):
            token = await tx.get_token(digest)
            assert token is not None
            assert token.consumed_at is None


# -- signing keys --------------------------------------------------------------------------


async def test_signing_keys_are_listed_newest_first_and_retire_after_their_time(
    store: SQLiteStore,
) -> None:
    async with store.reader() as tx:
        (template_key,) = await tx.list_signing_keys()  # created with the test database
    async with store.transaction() as tx:
        await tx.add_signing_key("old", "ES256", '{"kid": "old"}', NOW)
        await tx.add_signing_key("new", "ES256", '{"kid": "new"}', NOW + 100)
        assert await tx.retire_signing_keys("new", "ES256", NOW + 500) == 2
    async with store.reader() as tx:
        keys = await tx.list_signing_keys(NOW + 200)
        assert [(k.kid, k.active) for k in keys] == [
            ("new", True),
            ("old", False),
            (template_key.kid, False),
        ]
        assert keys[1].retired_at == NOW + 500
        # Once the old keys' tokens have all expired, they are no longer published.
        assert [k.kid for k in await tx.list_signing_keys(NOW + 500)] == ["new"]
        # Without a time, every key is listed (for `grantline keys list --all`).
        assert len(await tx.list_signing_keys()) == 3
    async with store.transaction() as tx:
        # Rotation retires keys of its own alg only.
        await tx.add_signing_key("ed", "Ed25519", '{"kid": "ed"}', NOW + 600)
        assert await tx.retire_signing_keys("ed", "Ed25519", NOW + 900) == 0
        assert [k.kid for k in await tx.list_signing_keys(NOW + 700) if k.active] == ["ed", "new"]


# -- audit ---------------------------------------------------------------------------------


def audit_event(type_: str = "grant.revoked", at: int = NOW, **fields: object) -> AuditEvent:
    return AuditEvent(type=type_, at=at, **fields)  # type: ignore[arg-type]


async def test_appended_event_round_trips_with_a_sequence_number(store: SQLiteStore) -> None:
    ev = audit_event(
        "consent.decided",
        client_id="agent",
        user_id="id-alice",
        request_id="req-1",
        grant_id="grant-1",
        data={"decision": "approve", "scopes": ["inbox.read"], "note": "héllo"},
    )
    async with store.transaction() as tx:
        await tx.append(ev)
        await tx.append(audit_event("grant.revoked", at=NOW + 1))
    async with store.reader() as tx:
        first, second = await tx.tail(10)
    assert first.seq is not None
    assert second.seq is not None
    assert second.seq > first.seq
    assert first == AuditEvent(
        type="consent.decided",
        at=NOW,
        client_id="agent",
        user_id="id-alice",
        request_id="req-1",
        grant_id="grant-1",
        data={"decision": "approve", "scopes": ["inbox.read"], "note": "héllo"},
        seq=first.seq,
    )
    assert second.data == {}
    assert second.client_id is None


async def test_tail_returns_the_newest_events_oldest_first(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        for i in range(5):
            await tx.append(audit_event(at=NOW + i, data={"i": i}))
    async with store.reader() as tx:
        assert [e.data["i"] for e in await tx.tail(3)] == [2, 3, 4]
        assert [e.data["i"] for e in await tx.tail(1)] == [4]
        assert [e.data["i"] for e in await tx.tail(100)] == [0, 1, 2, 3, 4]
        seqs = [e.seq for e in await tx.tail(5) if e.seq is not None]
    assert len(seqs) == 5
    assert seqs == sorted(seqs)


async def test_tail_of_an_empty_log_is_empty(store: SQLiteStore) -> None:
    async with store.reader() as tx:
        assert await tx.tail(10) == []


async def test_events_for_filters_by_request_or_grant(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.append(audit_event("pushed_request.accepted", request_id="req-1"))
        await tx.append(audit_event("pushed_request.accepted", request_id="req-2"))
        await tx.append(audit_event("code.issued", request_id="req-1", grant_id="grant-1"))
        await tx.append(audit_event("token.issued", grant_id="grant-1"))
        await tx.append(audit_event("token.issued", grant_id="grant-2"))
        await tx.append(audit_event("user.added"))
    async with store.reader() as tx:
        by_request = await tx.events_for(request_id="req-1")
        by_grant = await tx.events_for(grant_id="grant-1")
        by_other_grant = await tx.events_for(grant_id="grant-2")
        unknown = await tx.events_for(request_id="req-9")
        unfiltered = await tx.events_for()
    assert [(e.type, e.request_id) for e in by_request] == [
        ("pushed_request.accepted", "req-1"),
        ("code.issued", "req-1"),
    ]
    assert [(e.type, e.grant_id) for e in by_grant] == [
        ("code.issued", "grant-1"),
        ("token.issued", "grant-1"),
    ]
    assert [e.grant_id for e in by_other_grant] == ["grant-2"]
    assert unknown == []
    assert unfiltered == []


# -- transactions --------------------------------------------------------------------------


async def test_a_failing_transaction_rolls_back_everything(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_request(make_request())
        await tx.add_code(make_code())
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.add_client(make_client())
            await tx.add_user(make_user())
            assert await tx.consume_request("req-1", "agent", NOW) is True
            assert await tx.consume_code("code-1", "agent", NOW) is True
            await tx.append(audit_event("client.registered", client_id="agent"))
            # Visible inside the transaction before the failure...
            assert await tx.get_client("agent") is not None
            raise Boom
    # ...and gone after it, audit event included.
    async with store.reader() as tx:
        assert await tx.get_client("agent") is None
        assert await tx.get_user_by_username("alice") is None
        assert await tx.tail(10) == []
        request = await tx.get_request("req-1")
        code = await tx.get_code("code-1")
    assert request is not None
    assert request.consumed_at is None
    assert code is not None
    assert code.consumed_at is None
    async with store.transaction() as tx:
        assert await tx.consume_request("req-1", "agent", NOW) is True


async def test_the_store_is_usable_after_a_rollback(store: SQLiteStore) -> None:
    with pytest.raises(KeyError):
        async with store.transaction() as tx:
            await tx.add_client(make_client())
            await tx.add_client(make_client())
    async with store.transaction() as tx:
        await tx.add_client(make_client("after"))
    async with store.reader() as tx:
        assert [c.client_id for c in await tx.list_clients()] == ["after"]


async def test_a_committed_transaction_is_seen_by_another_connection(
    store: SQLiteStore, open_backend: Callable[[], SQLiteStore]
) -> None:
    other = open_backend()
    async with store.transaction() as tx:
        await tx.add_client(make_client())
        await tx.append(audit_event("client.registered", client_id="agent"))
    async with other.reader() as tx:
        assert await tx.get_client("agent") == make_client()
        assert [e.type for e in await tx.tail(5)] == ["client.registered"]


async def test_ping_succeeds_on_an_open_store_and_raises_once_closed(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await store.ping()
    await store.close()
    with pytest.raises(StorageUnavailable):
        await store.ping()


# -- several processes on one file ---------------------------------------------------------


def race(db_path: Path, attempt: Callable[[SQLiteTransaction], Awaitable[bool]]) -> list[bool]:
    """Run ``attempt`` at once from two threads, each with its own store and event loop."""
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def contender() -> None:
        async def run() -> bool:
            store = SQLiteStore(str(db_path))
            try:
                barrier.wait(timeout=10)
                async with store.transaction() as tx:
                    return await attempt(tx)
            finally:
                await store.close()

        try:
            results.append(asyncio.run(run()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=contender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


@pytest.fixture
def seeded_file(db_path: Path) -> Iterator[Path]:
    async def seed() -> None:
        store = SQLiteStore(str(db_path))
        try:
            async with store.transaction() as tx:
                for i in range(10):
                    await tx.add_request(make_request(f"req-{i}"))
                    await tx.add_code(make_code(f"code-{i}"))
                    await tx.add_token(make_token(f"tok-{i}"))
        finally:
            await store.close()

    asyncio.run(seed())
    yield db_path


@pytest.mark.parametrize("round_", range(10))
def test_only_one_of_two_processes_consumes_a_request(seeded_file: Path, round_: int) -> None:
    results = race(
        seeded_file, lambda tx: tx.consume_request(f"req-{round_}", "agent", NOW + round_)
    )
    assert sorted(results) == [False, True]


@pytest.mark.parametrize("round_", range(10))
def test_only_one_of_two_processes_consumes_a_code(seeded_file: Path, round_: int) -> None:
    results = race(seeded_file, lambda tx: tx.consume_code(f"code-{round_}", "agent", NOW))
    assert sorted(results) == [False, True]


@pytest.mark.parametrize("round_", range(10))
def test_only_one_of_two_processes_rotates_a_refresh_token(seeded_file: Path, round_: int) -> None:
    results = race(seeded_file, lambda tx: tx.consume_token(f"tok-{round_}", "agent", NOW))
    assert sorted(results) == [False, True]


async def test_two_stores_consuming_in_turn_agree_on_the_winner(db_path: Path) -> None:
    first, second = SQLiteStore(str(db_path)), SQLiteStore(str(db_path))
    try:
        async with first.transaction() as tx:
            await tx.add_request(make_request())
            await tx.add_code(make_code())
        async with second.transaction() as tx:
            assert await tx.consume_request("req-1", "agent", NOW) is True
            assert await tx.consume_code("code-1", "agent", NOW) is True
        async with first.transaction() as tx:
            assert await tx.consume_request("req-1", "agent", NOW) is False
            assert await tx.consume_code("code-1", "agent", NOW) is False
    finally:
        await first.close()
        await second.close()


# -- housekeeping ----------------------------------------------------------------------------


async def test_prune_deletes_only_what_expired_before_the_grace_period(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        await tx.add_request(make_request("old-req", expires_at=NOW - 100))
        await tx.add_request(make_request("new-req", expires_at=NOW + 100))
        await tx.add_interaction(make_interaction("old-int", expires_at=NOW - 100))
        await tx.add_code(make_code("old-code", expires_at=NOW - 100))
        await tx.add_token(make_token("old-tok", expires_at=NOW - 100))
        await tx.add_token(make_token("grace-tok", expires_at=NOW - 10))
        await tx.add_session(Session("old-s", "u", NOW - 200, NOW - 100))
        await tx.add_grant(Grant("g-kept", "agent", "u", (), "old-req", NOW - 1000))
        assert await tx.remember_once("old-jti", NOW - 100, NOW - 200)
        await tx.append(audit_event())
    async with store.transaction() as tx:
        deleted = await tx.prune_expired(NOW, keep_for=50)
    assert deleted == {
        "authorization_requests": 1,
        "interactions": 1,
        "sessions": 1,
        "authorization_codes": 1,
        "tokens": 1,
        "replay_cache": 1,
    }
    async with store.reader() as tx:
        assert await tx.get_request("old-req") is None
        assert await tx.get_request("new-req") is not None
        assert await tx.get_token("old-tok") is None
        assert await tx.get_token("grace-tok") is not None  # inside the grace period
        assert await tx.get_grant("g-kept") is not None
        assert len(await tx.tail(10)) == 1  # the audit trail is never pruned here

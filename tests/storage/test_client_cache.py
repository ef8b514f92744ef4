"""Cached client records never outlive a change to any client (RFC 9126 7.4), whoever makes it."""

from __future__ import annotations

import dataclasses
from typing import Any

from grantline.models import Client
from grantline.storage import Store
from grantline.storage.client_cache import ClientCache
from tests.storage.conftest import Tamper


def _client(client_id: str = "agent", **changes: Any) -> Client:
    base = Client(
        client_id=client_id,
        name="Invoice Agent",
        auth_method="client_secret_basic",
        redirect_uris=("https://agent.example/cb",),
        secret_digest="a" * 64,
    )
    return dataclasses.replace(base, **changes)


async def _add(store: Store, client: Client) -> None:
    async with store.transaction() as tx:
        await tx.add_client(client)


async def _get(cache: ClientCache, store: Store, client_id: str = "agent") -> Client | None:
    async with store.reader() as tx:
        return await cache.get(tx, client_id)


async def test_every_kind_of_change_to_clients_moves_the_generation(
    store: Store, tamper: Tamper
) -> None:
    async with store.reader() as tx:
        start = await tx.client_generation()
    await _add(store, _client())
    async with store.transaction() as tx:
        await tx.update_client(_client(name="Renamed"))
    await tamper("UPDATE clients SET name = 'by hand' WHERE client_id = 'agent'")
    await tamper("DELETE FROM clients WHERE client_id = 'agent'")
    async with store.reader() as tx:
        assert await tx.client_generation() == start + 4


async def test_a_cached_record_is_served_until_any_client_changes(
    store: Store, tamper: Tamper
) -> None:
    cache = ClientCache()
    await _add(store, _client())
    first = await _get(cache, store)
    assert first is not None
    # Unchanged generation: the very same record, not a re-read.
    assert await _get(cache, store) is first
    # A change by another process, straight in SQL: the next lookup sees it.
    await tamper("UPDATE clients SET secret_digest = ? WHERE client_id = 'agent'", "b" * 64)
    again = await _get(cache, store)
    assert again is not None
    assert again.secret_digest == "b" * 64


async def test_a_change_to_another_client_drops_the_record_too(
    store: Store, open_backend: Any
) -> None:
    cache = ClientCache()
    await _add(store, _client())
    cached = await _get(cache, store)
    other_process = open_backend()
    await _add(other_process, _client("other"))
    assert await _get(cache, store) is not cached


async def test_a_removed_client_is_unknown_at_the_next_lookup(
    store: Store, open_backend: Any
) -> None:
    cache = ClientCache()
    await _add(store, _client())
    assert await _get(cache, store) is not None
    other_process = open_backend()
    async with other_process.transaction() as tx:
        await tx.remove_client("agent", 0)
    assert await _get(cache, store) is None


async def test_unknown_client_ids_are_not_cached(store: Store) -> None:
    cache = ClientCache()
    for n in range(50):
        assert await _get(cache, store, f"nobody-{n}") is None
    assert len(cache._clients) == 0


async def test_the_cache_starts_over_rather_than_grow_past_its_bound(store: Store) -> None:
    cache = ClientCache(max_entries=3)
    for n in range(4):
        await _add(store, _client(f"c{n}"))
    for n in range(4):
        assert await _get(cache, store, f"c{n}") is not None
        assert len(cache._clients) <= 3


class _ChangedWhileReading:
    """A store on which a client changes (generation 5 to 6) between this reader's reading
    the generation and its reading the record, and another reader looks the client up in
    between: the case of two concurrent lookups on PostgreSQL."""

    def __init__(self, cache: ClientCache) -> None:
        self.cache = cache
        self.old = _client(name="before the change")
        self.new = _client(name="after the change")

    async def client_generation(self) -> int:
        return 5

    async def get_client(self, client_id: str) -> Client | None:
        fresh = _Fixed(6, self.new)
        assert await self.cache.get(fresh, client_id) is self.new  # type: ignore[arg-type]
        return self.old  # what this slower reader's own statement saw


class _Fixed:
    def __init__(self, generation: int, record: Client) -> None:
        self.generation = generation
        self.record = record

    async def client_generation(self) -> int:
        return self.generation

    async def get_client(self, client_id: str) -> Client | None:
        return self.record


async def test_a_record_read_under_an_older_generation_is_not_kept() -> None:
    cache = ClientCache()
    slow = _ChangedWhileReading(cache)
    # The slow reader itself uses what it read (its request began before the change) ...
    assert await cache.get(slow, "agent") is slow.old  # type: ignore[arg-type]
    # ... but does not put it back over the newer record.
    assert await cache.get(_Fixed(6, slow.old), "agent") is slow.new  # type: ignore[arg-type]

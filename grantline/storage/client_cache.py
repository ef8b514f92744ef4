"""Client records cached per process, dropped the moment any client changes (RFC 9126 7.4).

Every back-channel request authenticates a client; parsing its stored policy on every request
was a measurable share of a push. A record here is used only while the database's client
generation (moved by a trigger on every INSERT, UPDATE or DELETE of ``clients``, whoever runs
it) is the one it was read under, and that generation is read again on every request: a policy
change, a removal or a rotated secret applies from the next request, in every process.
"""

from __future__ import annotations

from grantline.models import Client
from grantline.storage import ClientStore

__all__ = ["ClientCache"]


class ClientCache:
    __slots__ = ("_clients", "_generation", "_max_entries")

    def __init__(self, max_entries: int = 10_000) -> None:
        self._clients: dict[str, Client] = {}
        self._generation: int | None = None
        #: Enough for every client of a large deployment; past it the cache starts over
        #: rather than grow (unknown client_ids are never cached, so callers cannot fill it).
        self._max_entries = max_entries

    async def get(self, store: ClientStore, client_id: str) -> Client | None:
        """The client as of now; one small read when cached, two when not."""
        generation = await store.client_generation()
        if generation != self._generation:
            self._clients.clear()
            self._generation = generation
        client = self._clients.get(client_id)
        if client is None:
            client = await store.get_client(client_id)
            # Only under the generation it was read after: a slower reader from before a
            # change must not put its older record back.
            if client is not None and self._generation == generation:
                if len(self._clients) >= self._max_entries:
                    self._clients.clear()
                self._clients[client_id] = client
        return client

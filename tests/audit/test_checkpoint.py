"""Checkpoints signed while the server runs: every interval, only when the log has grown."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from grantline.app import create_app
from grantline.audit import event
from grantline.audit.checkpoint import checkpoint_periodically, read_checkpoint
from grantline.settings import Settings
from grantline.storage.sql import SQLiteStore
from grantline.tokens.keys import create_signing_key
from tests.conftest import SECRET_KEY
from tests.helpers import ISSUER, FrozenClock


async def stored_checkpoints(store: SQLiteStore) -> int:
    async with store.reader() as tx:
        return len(await tx.list_checkpoints())


async def wait_for(store: SQLiteStore, count: int, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await stored_checkpoints(store) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{await stored_checkpoints(store)} checkpoints, wanted {count}")


async def test_a_checkpoint_is_signed_each_time_the_log_has_grown(
    store: SQLiteStore, clock: FrozenClock
) -> None:
    async with store.transaction() as tx:
        await create_signing_key(tx, clock(), "ES256", secret=SECRET_KEY)
    task = asyncio.create_task(
        checkpoint_periodically(store, ISSUER, 0.05, clock, secret=SECRET_KEY)
    )
    try:
        await wait_for(store, 1)
        # Nothing new: the heads are the same, so no second checkpoint however long it runs.
        await asyncio.sleep(0.3)
        assert await stored_checkpoints(store) == 1
        async with store.transaction() as tx:
            await tx.append(event("user.login_failed", clock(), user_id="u1"))
        await wait_for(store, 2)
    finally:
        task.cancel()
    async with store.reader() as tx:
        rows = await tx.list_checkpoints()
        signed = [await read_checkpoint(r.jws, tx, secret=SECRET_KEY) for r in rows]
        heads = await tx.audit_heads()
    # The second checkpoint signs the heads as they are now; the first, the heads before.
    assert [c.heads == heads for c in signed].count(True) == 1
    assert len({c.root for c in signed}) == 2
    assert {c.issuer for c in signed} == {ISSUER}


async def test_the_server_signs_checkpoints_only_when_configured(
    settings: Settings, store: SQLiteStore, db_path: Path, clock: FrozenClock
) -> None:
    async with store.transaction() as tx:
        await tx.append(event("user.login_failed", clock(), user_id="u1"))
    # Each app closes its store when its lifespan ends.
    off = dataclasses.replace(settings, audit_checkpoint_interval=0)
    quiet = create_app(off, SQLiteStore(str(db_path)))
    async with quiet.router.lifespan_context(quiet):
        await asyncio.sleep(1.2)
    assert await stored_checkpoints(store) == 0
    every_second = dataclasses.replace(settings, audit_checkpoint_interval=1)
    app = create_app(every_second, SQLiteStore(str(db_path)))
    async with app.router.lifespan_context(app):
        await wait_for(store, 1, seconds=5)

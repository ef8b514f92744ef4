"""server.js's SQLite adapter: the adapter interface on its own, then the provider on it, in one
process and as a cluster whose workers share the file. Needs Node 22 and oidc-provider as
``benchmarks/run.sh`` installs them; skipped without."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from suite.browser import Browser, obtain_tokens
from suite.node import NODE_BIN, OIDC_DIR
from suite.targets import OidcProviderTarget

pytestmark = pytest.mark.skipif(
    not (NODE_BIN.exists() and (OIDC_DIR / "node_modules" / "oidc-provider").is_dir()),
    reason="Node 22 or oidc-provider not installed in benchmarks/oidc-provider (run.sh does)",
)

# Each step's result, in order, as one JSON array on stdout.
ADAPTER_STEPS = """
import { prepareSqlite, pruneExpired, sqliteAdapter } from 'SERVER_URL';
import { DatabaseSync } from 'node:sqlite';

const path = process.env.DB;
await prepareSqlite(path);
const adapter = await sqliteAdapter(path, 0);
const [at, rt, code, session, device] = ['AccessToken', 'RefreshToken', 'AuthorizationCode',
  'Session', 'DeviceCode'].map(adapter);
const out = [];
await at.upsert('t1', { jti: 't1', grantId: 'g1' }, 60);
await rt.upsert('t1', { jti: 't1', grantId: 'g1', v: 1 }, 60);
await rt.upsert('t1', { jti: 't1', grantId: 'g1', v: 2 }, 60);
await rt.upsert('t2', { jti: 't2', grantId: 'g2' }, 60);
out.push(await at.find('t1'), await rt.find('t1'), await at.find('nope'));
await code.upsert('c1', { jti: 'c1' }, -1);
await code.upsert('c2', { jti: 'c2' });
out.push(await code.find('c1') ?? null, await code.find('c2'));
await code.consume('c2');
out.push(typeof (await code.find('c2')).consumed);
await session.upsert('s1', { jti: 's1', uid: 'u1' }, 60);
await device.upsert('d1', { jti: 'd1', userCode: 'ABCD' }, 60);
out.push(await session.findByUid('u1'), await device.findByUserCode('ABCD'));
await at.revokeByGrantId('g1');
out.push(await at.find('t1') ?? null, await rt.find('t1') ?? null, await rt.find('t2'));
await session.destroy('s1');
out.push(await session.findByUid('u1') ?? null);
adapter.close();
const db = new DatabaseSync(path);
out.push(db.prepare('PRAGMA journal_mode').get().journal_mode, pruneExpired(db));
console.log(JSON.stringify(out));
"""


def test_adapter_interface(tmp_path: Path) -> None:
    script = ADAPTER_STEPS.replace("SERVER_URL", (OIDC_DIR / "server.js").as_uri())
    done = subprocess.run(
        [str(NODE_BIN), "--no-warnings", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        env={"DB": str(tmp_path / "adapter.db")},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)
    assert steps == [
        # One row per (model, id); an upsert replaces the payload.
        {"jti": "t1", "grantId": "g1"},
        {"jti": "t1", "grantId": "g1", "v": 2},
        None,
        # Expired entries are not returned; without an expiry they stay.
        None,
        {"jti": "c2"},
        # consume() marks the payload, as the provider reads it back.
        "number",
        {"jti": "s1", "uid": "u1"},
        {"jti": "d1", "userCode": "ABCD"},
        # Revoking a grant removes its tokens of every model, and only its own.
        None,
        None,
        {"jti": "t2", "grantId": "g2"},
        None,
        "wal",
        # The sweep deletes what has expired (the one code).
        1,
    ]


@pytest.fixture
def sqlite_cluster(tmp_path: Path) -> Iterator[OidcProviderTarget]:
    target = OidcProviderTarget(2, str(NODE_BIN), adapter="sqlite")
    target.start(tmp_path)
    try:
        yield target
    finally:
        target.stop()


def test_one_process_on_sqlite_stores_the_push(tmp_path: Path) -> None:
    target = OidcProviderTarget(1, str(NODE_BIN), adapter="sqlite")
    target.start(tmp_path)
    try:
        assert target.auth is not None
        response = httpx.post(
            target.auth.url(target.auth.endpoints.par),
            auth=(target.auth.client_id, target.auth.client_secret),
            data={
                "response_type": "code",
                "client_id": target.auth.client_id,
                "redirect_uri": target.auth.redirect_uri,
                "scope": "inbox.read",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            },
        )
    finally:
        target.stop()
    assert response.status_code == 201, response.text
    db = tmp_path / target.key / "oidc-provider.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM oidc_entries WHERE model = 'PushedAuthorizationRequest'"
        ).fetchone()
    assert rows == (1,)


def test_cluster_workers_share_the_store(sqlite_cluster: OidcProviderTarget) -> None:
    """Whole flows and introspection, each step on a new connection, which node:cluster hands
    to its workers in turn: a step that landed on a worker without the state would fail."""
    auth = sqlite_cluster.auth
    assert auth is not None
    for _ in range(3):
        browser = Browser(auth)
        try:
            tokens = obtain_tokens(browser, resource=sqlite_cluster.introspection_resource)
        finally:
            browser.close()
        for _ in range(2):
            answer = httpx.post(
                auth.url(auth.endpoints.introspect),
                auth=(auth.client_id, auth.client_secret),
                data={"token": tokens["access_token"]},
            )
            assert answer.status_code == 200 and answer.json()["active"] is True

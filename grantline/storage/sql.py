"""The SQL implementation of the storage protocols, on SQLite.

Statements are plain DB-API calls rather than an ORM: the PAR, authorization and token endpoints
run a handful of primary-key statements per request, and measured on this project's hardware a
Starlette handler stored 7.8k pushes/s through ``sqlite3`` against 1.4k/s through SQLAlchemy's
async engine over aiosqlite. SQLite calls take microseconds in WAL mode, so they run on the event
loop thread; an asyncio lock keeps one coroutine's transaction from interleaving with another's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from typing import Any, cast

from grantline.models import (
    AuditEvent,
    AuthMethod,
    AuthorizationCode,
    AuthorizationRequest,
    Client,
    Grant,
    Interaction,
    Session,
    SigningKey,
    StoredRequest,
    Token,
    TokenKind,
    User,
)
from grantline.storage import StorageUnavailable
from grantline.storage.audit import SqlAuditLog, canonical_json
from grantline.storage.limits import SqlLimits
from grantline.storage.statements import HeldUnit, Statement, batched_statements

__all__ = ["SQLiteStore", "SQLiteTransaction", "SqlTransaction", "connect_sqlite"]


#: How long a statement waits for another process's lock before failing.
BUSY_TIMEOUT_MS = 5000
#: How often a process waiting for another's write lock tries again.
LOCK_POLL_SECONDS = 0.001
#: WAL pages after which a COMMIT checkpoints by itself, when the checkpoint thread lags.
BACKSTOP_CHECKPOINT_PAGES = 16_384


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A connection tuned for many short transactions shared by several processes."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


class SqlTransaction(SqlAuditLog, SqlLimits):
    """``storage.Transaction`` in portable SQL (``?`` placeholders, ``ON CONFLICT``); a
    subclass supplies the three primitives (``_one``, ``_all``, ``_run``) for its database."""

    __slots__ = ()

    # -- clients -------------------------------------------------------------------------

    _CLIENT_COLS = "client_id, name, auth_method, secret_digest, metadata, created_at, updated_at"

    @staticmethod
    def _client(row: Any) -> Client:
        meta = json.loads(row[4])
        return Client(
            client_id=row[0],
            name=row[1],
            auth_method=cast(AuthMethod, row[2]),
            secret_digest=row[3],
            redirect_uris=tuple(meta["redirect_uris"]),
            scopes=tuple(meta.get("scopes", ())),
            require_par=meta.get("require_par"),
            par_lifetime=meta.get("par_lifetime"),
            authorization_details_types=tuple(meta.get("authorization_details_types", ())),
            resources=tuple(meta.get("resources", ())),
            can_introspect=bool(meta.get("can_introspect", False)),
            jwks=meta.get("jwks"),
            jwks_uri=meta.get("jwks_uri"),
            require_signed_request_object=bool(meta.get("require_signed_request_object", False)),
            dpop_bound_access_tokens=bool(meta.get("dpop_bound_access_tokens", False)),
            created_at=row[5],
            updated_at=row[6],
        )

    @staticmethod
    def _client_row(client: Client) -> tuple[Any, ...]:
        meta = {
            "redirect_uris": list(client.redirect_uris),
            "scopes": list(client.scopes),
            "require_par": client.require_par,
            "par_lifetime": client.par_lifetime,
            "authorization_details_types": list(client.authorization_details_types),
            "resources": list(client.resources),
            "can_introspect": client.can_introspect,
            "jwks": client.jwks,
            "jwks_uri": client.jwks_uri,
            "require_signed_request_object": client.require_signed_request_object,
            "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        }
        return (
            client.client_id,
            client.name,
            client.auth_method,
            client.secret_digest,
            canonical_json(meta),
            client.created_at,
            client.updated_at,
        )

    async def get_client(self, client_id: str) -> Client | None:
        row = await self._one(
            f"SELECT {self._CLIENT_COLS} FROM clients WHERE client_id = ?", (client_id,)
        )
        return None if row is None else self._client(row)

    async def list_clients(self) -> list[Client]:
        rows = await self._all(f"SELECT {self._CLIENT_COLS} FROM clients ORDER BY client_id")
        return [self._client(r) for r in rows]

    async def add_client(self, client: Client) -> None:
        added = await self._run(
            f"INSERT INTO clients ({self._CLIENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            self._client_row(client),
        )
        if added != 1:
            raise KeyError(client.client_id)

    async def update_client(self, client: Client) -> None:
        row = self._client_row(client)
        await self._run(
            "UPDATE clients SET name = ?, auth_method = ?, secret_digest = ?, metadata = ?, "
            "updated_at = ? WHERE client_id = ?",
            (row[1], row[2], row[3], row[4], row[6], row[0]),
        )

    async def remove_client(self, client_id: str, now: int) -> int | None:
        if await self._run("DELETE FROM clients WHERE client_id = ?", (client_id,)) != 1:
            return None
        return await self._revoke_grants_where("client_id", client_id, now)

    async def client_generation(self) -> int:
        row = await self._one("SELECT value FROM client_generation WHERE id = 1", ())
        return int(row[0])

    async def _revoke_grants_where(self, column: str, value: str, now: int) -> int:
        # ``column`` is one of two fixed names, never input. Grants before tokens, as in
        # ``revoke_grant``.
        revoked = await self._run(
            f"UPDATE grants SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL",
            (now, value),
        )
        await self._run(
            "UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND grant_id IN "
            f"(SELECT grant_id FROM grants WHERE {column} = ?)",
            (now, value),
        )
        return revoked

    # -- users ---------------------------------------------------------------------------

    _USER_COLS = "user_id, username, password_hash, created_at"

    async def get_user(self, user_id: str) -> User | None:
        row = await self._one(f"SELECT {self._USER_COLS} FROM users WHERE user_id = ?", (user_id,))
        return None if row is None else User(*row)

    async def get_user_by_username(self, username: str) -> User | None:
        row = await self._one(
            f"SELECT {self._USER_COLS} FROM users WHERE username = ?", (username,)
        )
        return None if row is None else User(*row)

    async def list_users(self) -> list[User]:
        return [
            User(*r)
            for r in await self._all(f"SELECT {self._USER_COLS} FROM users ORDER BY username")
        ]

    async def add_user(self, user: User) -> None:
        added = await self._run(
            f"INSERT INTO users ({self._USER_COLS}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (user.user_id, user.username, user.password_hash, user.created_at),
        )
        if added != 1:
            raise KeyError(user.username)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._run(
            "UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id)
        )

    async def remove_user(self, username: str, now: int) -> tuple[User, int] | None:
        user = await self.get_user_by_username(username)
        if user is None:
            return None
        await self._run("DELETE FROM sessions WHERE user_id = ?", (user.user_id,))
        await self._run("DELETE FROM users WHERE user_id = ?", (user.user_id,))
        return user, await self._revoke_grants_where("user_id", user.user_id, now)

    # -- authorization requests ----------------------------------------------------------

    _REQUEST_COLS = (
        "request_id, client_id, request, raw_params, pushed, created_at, expires_at, "
        "first_presented_at, consumed_at, presented_browser"
    )

    async def add_request(self, request: StoredRequest) -> None:
        await self._insert(
            f"INSERT INTO authorization_requests ({self._REQUEST_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.request_id,
                request.client_id,
                canonical_json(request.request.to_json()),
                canonical_json(request.raw_params),
                request.pushed,
                request.created_at,
                request.expires_at,
                request.first_presented_at,
                request.consumed_at,
                request.presented_browser,
            ),
        )

    async def get_request(self, request_id: str) -> StoredRequest | None:
        row = await self._one(
            f"SELECT {self._REQUEST_COLS} FROM authorization_requests WHERE request_id = ?",
            (request_id,),
        )
        if row is None:
            return None
        return StoredRequest(
            request_id=row[0],
            client_id=row[1],
            request=AuthorizationRequest.from_json(json.loads(row[2])),
            raw_params=json.loads(row[3]),
            pushed=bool(row[4]),
            created_at=row[5],
            expires_at=row[6],
            first_presented_at=row[7],
            consumed_at=row[8],
            presented_browser=row[9],
        )

    async def mark_presented(self, request_id: str, now: int, browser_digest: str) -> bool:
        await self._run(
            "UPDATE authorization_requests SET first_presented_at = ?, presented_browser = ? "
            "WHERE request_id = ? AND first_presented_at IS NULL",
            (now, browser_digest, request_id),
        )
        row = await self._one(
            "SELECT presented_browser FROM authorization_requests WHERE request_id = ?",
            (request_id,),
        )
        return row is not None and row[0] == browser_digest

    async def consume_request(self, request_id: str, client_id: str, now: int) -> bool:
        return (
            await self._run(
                "UPDATE authorization_requests SET consumed_at = ? "
                "WHERE request_id = ? AND client_id = ? AND consumed_at IS NULL",
                (now, request_id, client_id),
            )
            == 1
        )

    # -- interactions --------------------------------------------------------------------

    _INTERACTION_COLS = (
        "interaction_id, request_id, client_id, browser_digest, created_at, expires_at, "
        "user_id, consent_digest, completed_at, failed_logins"
    )

    async def add_interaction(self, interaction: Interaction) -> None:
        i = interaction
        await self._insert(
            f"INSERT INTO interactions ({self._INTERACTION_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                i.interaction_id,
                i.request_id,
                i.client_id,
                i.browser_digest,
                i.created_at,
                i.expires_at,
                i.user_id,
                i.consent_digest,
                i.completed_at,
                i.failed_logins,
            ),
        )

    async def get_interaction(self, interaction_id: str) -> Interaction | None:
        row = await self._one(
            f"SELECT {self._INTERACTION_COLS} FROM interactions WHERE interaction_id = ?",
            (interaction_id,),
        )
        return None if row is None else Interaction(*row)

    async def record_failed_login(self, interaction_id: str, limit: int, now: int) -> int:
        await self._run(
            "UPDATE interactions SET failed_logins = failed_logins + 1, "
            "completed_at = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE completed_at END "
            "WHERE interaction_id = ?",
            (limit, now, interaction_id),
        )
        row = await self._one(
            "SELECT failed_logins FROM interactions WHERE interaction_id = ?", (interaction_id,)
        )
        return 0 if row is None else int(row[0])

    async def set_interaction_user(self, interaction_id: str, user_id: str) -> None:
        await self._run(
            "UPDATE interactions SET user_id = ? WHERE interaction_id = ?",
            (user_id, interaction_id),
        )

    async def set_consent_shown(self, interaction_id: str, consent_digest: str) -> None:
        await self._run(
            "UPDATE interactions SET consent_digest = ? WHERE interaction_id = ?",
            (consent_digest, interaction_id),
        )

    async def complete_interaction(self, interaction_id: str, now: int) -> bool:
        return (
            await self._run(
                "UPDATE interactions SET completed_at = ? "
                "WHERE interaction_id = ? AND completed_at IS NULL AND expires_at > ?",
                (now, interaction_id, now),
            )
            == 1
        )

    # -- sessions ------------------------------------------------------------------------

    async def add_session(self, session: Session) -> None:
        await self._insert(
            "INSERT INTO sessions (session_id, user_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (session.session_id, session.user_id, session.created_at, session.expires_at),
        )

    async def get_session(self, session_id: str, now: int) -> Session | None:
        row = await self._one(
            "SELECT session_id, user_id, created_at, expires_at FROM sessions "
            "WHERE session_id = ? AND expires_at > ?",
            (session_id, now),
        )
        return None if row is None else Session(*row)

    async def remove_session(self, session_id: str) -> None:
        await self._run("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    # -- grants --------------------------------------------------------------------------

    async def add_grant(self, grant: Grant) -> None:
        await self._insert(
            "INSERT INTO grants (grant_id, client_id, user_id, scopes, request_id, created_at, "
            "revoked_at, authorization_details, resources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                grant.grant_id,
                grant.client_id,
                grant.user_id,
                canonical_json(list(grant.scopes)),
                grant.request_id,
                grant.created_at,
                grant.revoked_at,
                canonical_json(list(grant.authorization_details)),
                canonical_json(list(grant.resources)),
            ),
        )

    async def get_grant(self, grant_id: str) -> Grant | None:
        row = await self._one(
            "SELECT grant_id, client_id, user_id, scopes, request_id, created_at, revoked_at, "
            "authorization_details, resources FROM grants WHERE grant_id = ?",
            (grant_id,),
        )
        if row is None:
            return None
        return Grant(
            grant_id=row[0],
            client_id=row[1],
            user_id=row[2],
            scopes=tuple(json.loads(row[3])),
            request_id=row[4],
            created_at=row[5],
            revoked_at=row[6],
            authorization_details=tuple(json.loads(row[7])),
            resources=tuple(json.loads(row[8])),
        )

    async def lock_grant(self, grant_id: str) -> None:
        # A no-op UPDATE takes the row lock on every database (SQLite serialises writers
        # anyway), without PostgreSQL-only SELECT ... FOR UPDATE.
        await self._run("UPDATE grants SET revoked_at = revoked_at WHERE grant_id = ?", (grant_id,))

    async def revoke_grant(self, grant_id: str, now: int) -> bool:
        # The grant row first, its tokens second: the order every writer of a grant's tokens
        # follows (see ``lock_grant``), so concurrent rotations and revocations cannot deadlock.
        revoked = await self._run(
            "UPDATE grants SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
            (now, grant_id),
        )
        await self._run(
            "UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
            (now, grant_id),
        )
        return revoked == 1

    # -- authorization codes -------------------------------------------------------------

    _CODE_COLS = (
        "code_digest, grant_id, client_id, redirect_uri, code_challenge, code_challenge_method, "
        "created_at, expires_at, consumed_at, dpop_jkt, redirect_uri_sent"
    )

    async def add_code(self, code: AuthorizationCode) -> None:
        c = code
        await self._insert(
            f"INSERT INTO authorization_codes ({self._CODE_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                c.code_digest,
                c.grant_id,
                c.client_id,
                c.redirect_uri,
                c.code_challenge,
                c.code_challenge_method,
                c.created_at,
                c.expires_at,
                c.consumed_at,
                c.dpop_jkt,
                c.redirect_uri_sent,
            ),
        )

    async def get_code(self, code_digest: str) -> AuthorizationCode | None:
        row = await self._one(
            f"SELECT {self._CODE_COLS} FROM authorization_codes WHERE code_digest = ?",
            (code_digest,),
        )
        if row is None:
            return None
        return AuthorizationCode(
            code_digest=row[0],
            grant_id=row[1],
            client_id=row[2],
            redirect_uri=row[3],
            code_challenge=row[4],
            code_challenge_method=row[5],
            created_at=row[6],
            expires_at=row[7],
            consumed_at=row[8],
            dpop_jkt=row[9],
            redirect_uri_sent=bool(row[10]),
        )

    async def consume_code(self, code_digest: str, client_id: str, now: int) -> bool:
        return (
            await self._run(
                "UPDATE authorization_codes SET consumed_at = ? "
                "WHERE code_digest = ? AND client_id = ? AND consumed_at IS NULL",
                (now, code_digest, client_id),
            )
            == 1
        )

    # -- tokens --------------------------------------------------------------------------

    _TOKEN_COLS = (
        "token_digest, kind, grant_id, client_id, scopes, created_at, expires_at, consumed_at, "
        "revoked_at, audience, authorization_details, jti, jkt"
    )

    async def add_token(self, token: Token) -> None:
        t = token
        await self._insert(
            f"INSERT INTO tokens ({self._TOKEN_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                t.token_digest,
                t.kind,
                t.grant_id,
                t.client_id,
                canonical_json(list(t.scopes)),
                t.created_at,
                t.expires_at,
                t.consumed_at,
                t.revoked_at,
                canonical_json(list(t.audience)),
                canonical_json(list(t.authorization_details)),
                t.jti,
                t.jkt,
            ),
        )

    async def get_token(self, token_digest: str) -> Token | None:
        row = await self._one(
            f"SELECT {self._TOKEN_COLS} FROM tokens WHERE token_digest = ?", (token_digest,)
        )
        return None if row is None else self._token(row)

    async def get_token_by_jti(self, jti: str) -> Token | None:
        row = await self._one(
            f"SELECT {self._TOKEN_COLS} FROM tokens WHERE jti = ? AND kind = 'access_token'", (jti,)
        )
        return None if row is None else self._token(row)

    @staticmethod
    def _token(row: Any) -> Token:
        return Token(
            token_digest=row[0],
            kind=cast(TokenKind, row[1]),
            grant_id=row[2],
            client_id=row[3],
            scopes=tuple(json.loads(row[4])),
            created_at=row[5],
            expires_at=row[6],
            consumed_at=row[7],
            revoked_at=row[8],
            audience=tuple(json.loads(row[9])),
            authorization_details=tuple(json.loads(row[10])),
            jti=row[11],
            jkt=row[12],
        )

    async def revoke_token(self, token_digest: str, now: int) -> bool:
        return (
            await self._run(
                "UPDATE tokens SET revoked_at = ? WHERE token_digest = ? AND revoked_at IS NULL",
                (now, token_digest),
            )
            == 1
        )

    async def consume_token(self, token_digest: str, client_id: str, now: int) -> bool:
        return (
            await self._run(
                "UPDATE tokens SET consumed_at = ? WHERE token_digest = ? AND client_id = ? "
                "AND consumed_at IS NULL AND revoked_at IS NULL",
                (now, token_digest, client_id),
            )
            == 1
        )

    # -- housekeeping --------------------------------------------------------------------

    _EXPIRING = (
        "authorization_requests",
        "interactions",
        "sessions",
        "authorization_codes",
        "tokens",
        "replay_cache",
    )

    async def prune_expired(self, now: int, *, keep_for: int) -> dict[str, int]:
        cutoff = now - keep_for
        return {
            # The table names are the fixed list above, never input.
            table: await self._run(f"DELETE FROM {table} WHERE expires_at < ?", (cutoff,))
            for table in self._EXPIRING
        }

    # -- replay cache --------------------------------------------------------------------

    async def remember_once(self, key: str, expires_at: int, now: int) -> bool:
        if secrets.randbelow(64) == 0:
            # Pruning now and then keeps the table small without a background task.
            await self._run("DELETE FROM replay_cache WHERE expires_at <= ?", (now,))
        # One statement decides: a new key is inserted, an expired one is taken over, a live
        # one is left alone and changes no row.
        changed = await self._run(
            "INSERT INTO replay_cache (key, expires_at) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE replay_cache.expires_at <= ?",
            (key, expires_at, now),
        )
        return changed == 1

    # -- signing keys --------------------------------------------------------------------

    async def add_signing_key(self, kid: str, alg: str, private_jwk: str, now: int) -> None:
        await self._run(
            "INSERT INTO signing_keys (kid, alg, private_jwk, created_at, ordinal) "
            "VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(ordinal), 0) + 1 FROM signing_keys))",
            (kid, alg, private_jwk, now),
        )

    async def list_signing_keys(self, now: int | None = None) -> list[SigningKey]:
        where, args = (
            ("", ())
            if now is None
            else (
                "WHERE retired_at IS NULL OR retired_at > ? ",
                (now,),
            )
        )
        rows = await self._all(
            "SELECT kid, alg, private_jwk, created_at, retired_at FROM signing_keys "
            f"{where}ORDER BY ordinal DESC",
            args,
        )
        return [SigningKey(*r) for r in rows]

    async def retire_signing_keys(self, keep_kid: str, alg: str, published_until: int) -> int:
        return await self._run(
            "UPDATE signing_keys SET retired_at = ? "
            "WHERE kid != ? AND alg = ? AND retired_at IS NULL",
            (published_until, keep_kid, alg),
        )


class SQLiteTransaction(SqlTransaction):
    """One unit of work on an open SQLite connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending = []

    async def _one(self, sql: str, args: Sequence[Any]) -> Any:
        return self._conn.execute(sql, args).fetchone()

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, args).fetchall()

    async def _run(self, sql: str, args: Sequence[Any]) -> int:
        return self._conn.execute(sql, args).rowcount

    async def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class _Checkpointer:
    """Copies the WAL back into the database file from a thread of its own.

    With ``synchronous=NORMAL`` a commit does not wait for the disk, but SQLite's automatic
    checkpoint, run inside whichever COMMIT crosses 1,000 WAL pages, copies and fsyncs; on the
    event loop that stalled every request of the process (about 12 µs per push on average).
    A PASSIVE checkpoint never blocks writers or readers, and
    sqlite3 releases the GIL while it works. The writer keeps a high automatic threshold as a
    backstop should this thread fall behind.
    """

    INTERVAL = 0.05

    def __init__(self, path: str, store: SQLiteStore) -> None:
        self._path = path
        # Weak: a store dropped or closed without ``close()`` must not leave a thread behind.
        self._store = weakref.ref(store)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _writer_open(self) -> bool:
        store = self._store()
        if store is None:
            return False
        try:
            store._conn.total_changes  # noqa: B018 - raises once the connection is closed
        except sqlite3.ProgrammingError:
            return False
        return True

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=0)
        try:
            while not self._stop.wait(self.INTERVAL) and self._writer_open():
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # another process is checkpointing, or the file is going away
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


#: What a row of its own can make SQLite refuse; the unit that wrote it fails, not its batch.
_ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError)


class _Batch:
    """One open SQLite transaction and the units of work it holds until COMMIT."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[HeldUnit] = []

    def write_held_back(self, conn: sqlite3.Connection) -> list[AuditEvent]:
        """The inserts units held back, one ``executemany`` per statement; a refused row
        fails its own unit only. The events of the units still standing, in order."""
        held = [entry for entry in self.entries if entry.inserts]
        if held:
            conn.execute("SAVEPOINT held")
            try:
                for sql, rows in batched_statements([entry.inserts for entry in held]):
                    conn.executemany(sql, rows)
            except _ROW_ERRORS:
                conn.execute("ROLLBACK TO held")
                for entry in held:
                    conn.execute("SAVEPOINT unit")
                    try:
                        for sql, args in entry.inserts:
                            conn.execute(sql, args)
                    except _ROW_ERRORS as exc:
                        conn.execute("ROLLBACK TO unit")
                        entry.failure = exc
                    conn.execute("RELEASE unit")
            conn.execute("RELEASE held")
        return [e for entry in self.entries if entry.failure is None for e in entry.events]

    def settle(self, failure: BaseException | None) -> None:
        for entry in self.entries:
            entry.settle(failure)


class _UnitTransaction(SQLiteTransaction):
    """A unit's statements. Inserts are held back while nothing else has run, so a unit that
    only inserts (a pushed request and its event) takes no lock and runs no statement of its
    own: its rows go in with the batch's. The first other statement enters the batch, in a
    SAVEPOINT, and sends what was held back first."""

    __slots__ = ("_held", "_unit")

    def __init__(self, conn: sqlite3.Connection, unit: _Unit) -> None:
        super().__init__(conn)
        self._unit = unit
        #: None once the unit has entered the batch.
        self._held: list[Statement] | None = []

    async def _one(self, sql: str, args: Sequence[Any]) -> Any:
        if self._held is not None:
            await self._unit._enter()
        return self._conn.execute(sql, args).fetchone()

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        if self._held is not None:
            await self._unit._enter()
        return self._conn.execute(sql, args).fetchall()

    async def _run(self, sql: str, args: Sequence[Any]) -> int:
        if self._held is not None:
            await self._unit._enter()
        return self._conn.execute(sql, args).rowcount

    async def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._held is not None:
            await self._unit._enter()
        self._conn.executemany(sql, rows)

    async def _insert(self, sql: str, args: Sequence[Any]) -> None:
        if self._held is not None:
            self._held.append((sql, args))
        else:
            self._conn.execute(sql, args)


class _Unit:
    """``SQLiteStore.transaction()``: a unit of work, in a SAVEPOINT of the open batch from its
    first statement that is not a plain insert. A class rather than a generator-based context
    manager: it is entered on every write request."""

    __slots__ = ("_batch", "_store", "_tx")

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def __aenter__(self) -> SQLiteTransaction:
        self._tx = _UnitTransaction(self._store._conn, self)
        return self._tx

    async def _enter(self) -> None:
        """Take the store's lock and a SAVEPOINT in the open batch (one is begun if none is),
        held until the unit ends."""
        store = self._store
        conn = store._conn
        held = self._tx._held or []
        await store._lock.acquire()
        try:
            self._batch = store._batch or await store._begin()
            conn.execute("SAVEPOINT unit")
            try:
                for sql, args in held:
                    conn.execute(sql, args)
            except BaseException:
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                raise
        except BaseException:
            store._lock.release()
            raise
        self._tx._held = None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        tx = self._tx
        store = self._store
        loop = asyncio.get_running_loop()
        if tx._held is not None:
            # Never entered the batch (or failed to): nothing of it has run yet.
            if exc_type is not None or not (tx._held or tx._pending):
                return
            batch = store._batch
            if batch is None:
                async with store._lock:
                    batch = store._batch or await store._begin()
            entry = HeldUnit(tx._held, tx._pending, loop.create_future())
            batch.entries.append(entry)
            await entry.waiter
            return
        conn = store._conn
        try:
            if exc_type is not None:
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                return
            conn.execute("RELEASE unit")
            entry = HeldUnit([], tx._pending, loop.create_future())
            self._batch.entries.append(entry)
        finally:
            store._lock.release()
        await entry.waiter


class _Reads:
    """``SQLiteStore.reader()``. No lock: each statement runs to completion before the next
    (nothing here awaits SQLite), and each sees the latest COMMIT of any process."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> SQLiteTransaction:
        return SQLiteTransaction(self._conn)

    async def __aexit__(self, *exc: object) -> None:
        return None


class SQLiteStore:
    """``grantline.storage.Store`` over one SQLite connection per process, with group commit.

    Every ``transaction()`` is a unit of work inside a SAVEPOINT of one shared SQLite
    transaction; the transaction commits once the units that were ready to run together have
    run, and each unit returns only after that COMMIT. A unit that raises is rolled back to
    its savepoint alone. The audit events of the whole batch are chained in its last
    statements, so each unit's state change and its event still commit together or not at all.

    Why: a WAL COMMIT writes every page the transaction dirtied and was a fifth of a push's
    time (benchmarks/README.md, "What changed because of it"); one COMMIT for the pushes
    that arrived together pays that once per batch. Waiting for another process's write lock
    yields to the event loop instead of sleeping in SQLite's busy handler, so requests keep
    arriving (and join the batch) meanwhile.
    """

    #: Seconds to wait for another process's write lock before answering 503.
    LOCK_TIMEOUT = 5.0

    def __init__(self, path: str) -> None:
        self._conn = connect_sqlite(path)
        # Readers have a connection of their own: in WAL mode it sees only committed state
        # and never waits for the writer, so a read never sees a batch before its COMMIT.
        self._read_conn = connect_sqlite(path)
        self._lock = asyncio.Lock()
        self._batch: _Batch | None = None
        self._path = path
        self._checkpointer: _Checkpointer | None = None

    def transaction(self) -> _Unit:
        return _Unit(self)

    async def _begin(self) -> _Batch:
        """BEGIN IMMEDIATE (the write lock up front, so two processes never deadlock upgrading
        read locks), waiting for another process's lock on the event loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.LOCK_TIMEOUT
        conn = self._conn
        # Only this statement polls; every other one keeps the connection's busy_timeout.
        conn.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or loop.time() >= deadline:
                        raise StorageUnavailable(str(exc)) from exc
                # Another process holds the lock for one batch, a millisecond or two: try
                # again at the next tick rather than back off (longer pauses were the tail of
                # two-worker latency).
                await asyncio.sleep(LOCK_POLL_SECONDS)
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if self._checkpointer is None:
            self._conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
            self._checkpointer = _Checkpointer(self._path, self)
        batch = self._batch = _Batch()
        # The task runs after everything already ready, and takes the lock after every unit
        # already waiting for it: those join this batch.
        loop.create_task(self._commit(batch))
        return batch

    async def _commit(self, batch: _Batch) -> None:
        async with self._lock:
            self._batch = None
            conn = self._conn
            try:
                events = batch.write_held_back(conn)
                if events:
                    sealer = SQLiteTransaction(conn)
                    sealer._pending = events
                    await sealer.seal_audit()
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                failure = (
                    exc
                    if isinstance(exc, StorageUnavailable)
                    else StorageUnavailable(f"commit failed: {type(exc).__name__}")
                )
                batch.settle(failure)
                if not isinstance(exc, Exception):
                    raise
                return
            batch.settle(None)

    def reader(self) -> _Reads:
        return _Reads(self._read_conn)

    async def ping(self) -> None:
        try:
            for conn in (self._conn, self._read_conn):
                conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def close(self) -> None:
        async with self._lock:
            if self._checkpointer is not None:
                self._checkpointer.stop()
                self._checkpointer = None
            self._conn.close()
            self._read_conn.close()

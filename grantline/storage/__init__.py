"""Storage: narrow protocols, one SQL implementation (``grantline.storage.sql``).

Every mutating method runs inside a ``Transaction`` obtained from ``Store.transaction()``; the
audit event that records a change is appended through the same transaction, so both commit or
neither does. Single-use records are consumed with one conditional statement whose result says
whether this caller won.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from grantline.models import (
    AuditEvent,
    AuthorizationCode,
    Client,
    Grant,
    Interaction,
    Session,
    SigningKey,
    StoredRequest,
    Token,
    User,
)
from grantline.storage.audit import AuditCheckpointRow, ChainedEvent

__all__ = [
    "AuditLog",
    "ClientStore",
    "CodeStore",
    "GrantStore",
    "Housekeeping",
    "InteractionStore",
    "ReplayCache",
    "RequestStore",
    "SessionStore",
    "SigningKeyStore",
    "StorageUnavailable",
    "Store",
    "TokenStore",
    "Transaction",
    "UserStore",
]


class ClientStore(Protocol):
    async def get_client(self, client_id: str) -> Client | None:
        """The client, or None when unknown or removed."""

    async def list_clients(self) -> list[Client]: ...

    async def add_client(self, client: Client) -> None:
        """Raises ``KeyError`` when the client_id is taken."""

    async def update_client(self, client: Client) -> None:
        """Replaces the client's policy; it applies from the next request (RFC 9126 7.4)."""

    async def remove_client(self, client_id: str, now: int) -> int | None:
        """Removes the client and revokes its grants and their tokens; the number of grants
        revoked, or None when there was no such client."""

    async def client_generation(self) -> int:
        """A counter every change to any client moves (a trigger, whoever writes)."""


class UserStore(Protocol):
    async def get_user(self, user_id: str) -> User | None: ...

    async def get_user_by_username(self, username: str) -> User | None: ...

    async def list_users(self) -> list[User]: ...

    async def add_user(self, user: User) -> None:
        """Raises ``KeyError`` when the username is taken."""

    async def set_password(self, user_id: str, password_hash: str) -> None: ...

    async def remove_user(self, username: str, now: int) -> tuple[User, int] | None:
        """Removes the user, ends their sessions and revokes their grants and tokens; the user
        and the number of grants revoked, or None when there was no such user."""


class RequestStore(Protocol):
    async def add_request(self, request: StoredRequest) -> None: ...

    async def get_request(self, request_id: str) -> StoredRequest | None:
        """The stored request whatever its state; callers check ``is_presentable``."""

    async def mark_presented(self, request_id: str, now: int, browser_digest: str) -> bool:
        """Binds the request to the first browser that presents it. True when that browser is
        ``browser_digest`` (now or earlier); False when another browser got there first."""

    async def consume_request(self, request_id: str, client_id: str, now: int) -> bool:
        """Marks the request used. True only for the one caller that consumed it, and only if
        it belongs to ``client_id``; a consumed or foreign request returns False."""


class InteractionStore(Protocol):
    async def add_interaction(self, interaction: Interaction) -> None: ...

    async def get_interaction(self, interaction_id: str) -> Interaction | None:
        """The interaction whatever its state; callers check ``is_open``."""

    async def set_interaction_user(self, interaction_id: str, user_id: str) -> None: ...

    async def record_failed_login(self, interaction_id: str, limit: int, now: int) -> int:
        """Counts a failed login; at ``limit`` failures the interaction is closed. Returns the
        new count."""

    async def set_consent_shown(self, interaction_id: str, consent_digest: str) -> None: ...

    async def complete_interaction(self, interaction_id: str, now: int) -> bool:
        """True for the one caller that completed an open, unexpired interaction."""


class SessionStore(Protocol):
    async def add_session(self, session: Session) -> None: ...

    async def get_session(self, session_id: str, now: int) -> Session | None:
        """The session, or None when unknown or expired."""

    async def remove_session(self, session_id: str) -> None: ...


class GrantStore(Protocol):
    async def add_grant(self, grant: Grant) -> None: ...

    async def get_grant(self, grant_id: str) -> Grant | None: ...

    async def lock_grant(self, grant_id: str) -> None:
        """Holds the grant's row until the transaction ends. Every transaction that changes a
        grant's codes or tokens takes this lock first, so they queue instead of deadlocking."""

    async def revoke_grant(self, grant_id: str, now: int) -> bool:
        """Revokes the grant and every token issued under it; True if it was not revoked."""


class CodeStore(Protocol):
    async def add_code(self, code: AuthorizationCode) -> None: ...

    async def get_code(self, code_digest: str) -> AuthorizationCode | None: ...

    async def consume_code(self, code_digest: str, client_id: str, now: int) -> bool:
        """True for the one caller that consumed an unused code issued to ``client_id``."""


class TokenStore(Protocol):
    async def add_token(self, token: Token) -> None: ...

    async def get_token(self, token_digest: str) -> Token | None: ...

    async def get_token_by_jti(self, jti: str) -> Token | None:
        """The access token whose JWT carries ``jti``."""

    async def revoke_token(self, token_digest: str, now: int) -> bool:
        """Revokes one token; True if it was not revoked already."""

    async def consume_token(self, token_digest: str, client_id: str, now: int) -> bool:
        """Rotates a refresh token: True for the one caller that consumed an unused, unrevoked
        token issued to ``client_id``."""


class ReplayCache(Protocol):
    async def remember_once(self, key: str, expires_at: int, now: int) -> bool:
        """Records ``key`` until ``expires_at``. True the first time; False while an earlier
        record of the same key is still unexpired: a replay. Shared by every process."""


class SigningKeyStore(Protocol):
    async def add_signing_key(self, kid: str, alg: str, private_jwk: str, now: int) -> None: ...

    async def list_signing_keys(self, now: int | None = None) -> list[SigningKey]:
        """Keys still published at ``now`` (every key when None), newest first."""

    async def retire_signing_keys(self, keep_kid: str, alg: str, published_until: int) -> int:
        """Retire every active ``alg`` key but ``keep_kid``, published until the given time."""


class AuditLog(Protocol):
    async def append(self, event: AuditEvent) -> None:
        """Appends within the current transaction: the event is chained and stored when the
        transaction commits, and is lost with it when it rolls back."""

    async def tail(self, limit: int) -> list[AuditEvent]:
        """The newest ``limit`` events, oldest first."""

    async def events_for(
        self,
        *,
        request_id: str | None = None,
        grant_id: str | None = None,
        user_id: str | None = None,
    ) -> list[AuditEvent]:
        """Events that name any of the given ids, in chain order."""

    async def chained_events(self, lane: int, after: int, limit: int) -> list[ChainedEvent]:
        """Up to ``limit`` stored events of ``lane`` after position ``after``, in chain order,
        with their digests and links."""

    async def chained_since(self, after_seq: int, limit: int) -> list[ChainedEvent]:
        """Up to ``limit`` stored events after ``after_seq``, in ``seq`` order."""

    async def audit_heads(self) -> dict[int, tuple[int, str]]:
        """Every lane's newest position and link (0 and the genesis hash when empty)."""

    async def add_checkpoint(self, checkpoint: AuditCheckpointRow) -> bool: ...

    async def list_checkpoints(self) -> list[AuditCheckpointRow]: ...

    async def prune_event_bodies(self, before: int) -> int:
        """Drops the bodies of events older than ``before``; the chain stays verifiable."""


class Housekeeping(Protocol):
    async def prune_expired(self, now: int, *, keep_for: int) -> dict[str, int]:
        """Deletes pushed requests, interactions, sessions, codes, tokens and replay-cache
        entries that expired more than ``keep_for`` seconds before ``now``; grants and the
        audit trail are kept. Returns the number of rows deleted per table."""


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or is too busy; the request may be retried."""


class Transaction(
    ClientStore,
    UserStore,
    RequestStore,
    InteractionStore,
    SessionStore,
    GrantStore,
    CodeStore,
    TokenStore,
    ReplayCache,
    SigningKeyStore,
    AuditLog,
    Housekeeping,
    Protocol,
):
    """A unit of work: everything done through it commits together or not at all."""


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Begin a unit of work; it commits on normal exit and rolls back on an exception."""

    def reader(self) -> AbstractAsyncContextManager[Transaction]:
        """Reads outside a transaction: each statement sees the latest committed state. Writes
        through a reader are a programming error."""

    async def ping(self) -> None:
        """Raises when the database cannot be reached."""

    async def close(self) -> None: ...

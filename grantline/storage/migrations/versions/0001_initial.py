"""Initial schema: clients, users, requests, interactions, grants, codes, tokens, keys, audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("auth_method", sa.Text, nullable=False),
        sa.Column("secret_digest", sa.Text),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "authorization_requests",
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("raw_params", sa.Text, nullable=False),
        sa.Column("pushed", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("first_presented_at", _TS),
        sa.Column("consumed_at", _TS),
    )
    op.create_index(
        "ix_authorization_requests_expires_at", "authorization_requests", ["expires_at"]
    )
    op.create_table(
        "interactions",
        sa.Column("interaction_id", sa.Text, primary_key=True),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("browser_digest", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text),
        sa.Column("consent_digest", sa.Text),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("completed_at", _TS),
    )
    op.create_index("ix_interactions_expires_at", "interactions", ["expires_at"])
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("grant_id", sa.Text, primary_key=True),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
    )
    op.create_table(
        "authorization_codes",
        sa.Column("code_digest", sa.Text, primary_key=True),
        sa.Column("grant_id", sa.Text, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.Text, nullable=False),
        sa.Column("code_challenge_method", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("consumed_at", _TS),
    )
    op.create_table(
        "tokens",
        sa.Column("token_digest", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("grant_id", sa.Text, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("consumed_at", _TS),
        sa.Column("revoked_at", _TS),
    )
    op.create_index("ix_tokens_grant_id", "tokens", ["grant_id"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("alg", sa.Text, nullable=False),
        sa.Column("private_jwk", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("retired_at", _TS),
    )
    op.create_table(
        "audit_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("client_id", sa.Text),
        sa.Column("user_id", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("grant_id", sa.Text),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_events_request_id", "audit_events", ["request_id"])
    op.create_index("ix_audit_events_grant_id", "audit_events", ["grant_id"])


def downgrade() -> None:
    for table in (
        "audit_events",
        "signing_keys",
        "tokens",
        "authorization_codes",
        "grants",
        "sessions",
        "interactions",
        "authorization_requests",
        "users",
        "clients",
    ):
        op.drop_table(table)

"""Proof of possession: a replay cache shared by every process (client assertions, request
objects, DPoP proofs), and DPoP key bindings on codes and tokens.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replay_cache",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_replay_cache_expires_at", "replay_cache", ["expires_at"])
    with op.batch_alter_table("authorization_codes") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.Text))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("jkt", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("jkt")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("dpop_jkt")
    op.drop_index("ix_replay_cache_expires_at", "replay_cache")
    op.drop_table("replay_cache")

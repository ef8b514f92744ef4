"""Signing keys get an ordinal, so "newest first" holds for keys made in the same second on
every database (SQLite's rowid has no PostgreSQL twin).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("ordinal", sa.Integer))
    op.execute(
        "UPDATE signing_keys SET ordinal = (SELECT COUNT(*) FROM signing_keys AS k2 "
        "WHERE k2.created_at < signing_keys.created_at "
        "OR (k2.created_at = signing_keys.created_at AND k2.kid <= signing_keys.kid))"
    )


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("ordinal")

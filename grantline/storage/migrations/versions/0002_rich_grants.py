"""Rich grants: authorization details, resources and audiences on grants and tokens; signing
keys stay published until ``retired_at``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.add_column(
            sa.Column("authorization_details", sa.Text, nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("resources", sa.Text, nullable=False, server_default="[]"))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("audience", sa.Text, nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("authorization_details", sa.Text, nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("jti", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("jti")
        batch.drop_column("authorization_details")
        batch.drop_column("audience")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("resources")
        batch.drop_column("authorization_details")

"""A stored request is bound to the first browser that presents it; codes remember whether the
authorization request named its redirect_uri (RFC 6749 4.1.3); interactions count failed logins.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_requests") as batch:
        batch.add_column(sa.Column("presented_browser", sa.Text))
    with op.batch_alter_table("authorization_codes") as batch:
        batch.add_column(
            sa.Column("redirect_uri_sent", sa.Boolean, nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_grants_user_id", "grants", ["user_id"])
    op.create_index("ix_grants_client_id", "grants", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_grants_client_id", "grants")
    op.drop_index("ix_grants_user_id", "grants")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("failed_logins")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("redirect_uri_sent")
    with op.batch_alter_table("authorization_requests") as batch:
        batch.drop_column("presented_browser")

"""Rate-limit counters shared by every process (one GCRA arrival time per key), and failed
sign-in counts per account and per address.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.Text, primary_key=True),
        # Microseconds since the epoch.
        sa.Column("tat", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rate_limits_tat", "rate_limits", ["tat"])
    op.create_table(
        "sign_in_counters",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sign_in_counters_expires_at", "sign_in_counters", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_counters_expires_at", "sign_in_counters")
    op.drop_table("sign_in_counters")
    op.drop_index("ix_rate_limits_tat", "rate_limits")
    op.drop_table("rate_limits")

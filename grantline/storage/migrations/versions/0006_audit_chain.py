"""The audit log becomes hash chains: each event gets a lane, its position in the lane, the
SHA-256 of its body and a link to its predecessor; a head row per lane holds the newest link;
signed checkpoints of all heads are kept; bodies may be pruned (``data`` NULL) once their
retention ends. Existing events are chained in ``seq`` order.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from grantline.audit.chain import GENESIS, LANES, ChainEntry, body_digest, lane_of, link

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("lane", sa.Integer))
        batch.add_column(sa.Column("position", sa.BigInteger))
        batch.add_column(sa.Column("body_sha256", sa.Text))
        batch.add_column(sa.Column("chain_hash", sa.Text))
        batch.alter_column("data", existing_type=sa.Text, nullable=True)
    op.create_index("ix_audit_events_user_id", "audit_events", ["user_id"])
    op.create_index("ix_tokens_jti", "tokens", ["jti"])
    head = op.create_table(
        "audit_head",
        sa.Column("lane", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("root", sa.Text, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("jws", sa.Text, nullable=False),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT seq, type, at, client_id, user_id, request_id, grant_id, data "
            "FROM audit_events ORDER BY seq"
        )
    ).fetchall()
    heads = {lane: (0, GENESIS) for lane in range(LANES)}
    for row in rows:
        lane = lane_of(row[5], row[6], row[3], row[4])
        position, prev = heads[lane][0] + 1, heads[lane][1]
        body = body_digest(row[7])
        entry = ChainEntry(lane, position, row[1], row[2], row[3], row[4], row[5], row[6], body)
        heads[lane] = (position, link(prev, entry))
        conn.execute(
            sa.text(
                "UPDATE audit_events SET lane = :l, position = :p, body_sha256 = :b, "
                "chain_hash = :h WHERE seq = :s"
            ),
            {"l": lane, "p": position, "b": body, "h": heads[lane][1], "s": row[0]},
        )
    op.bulk_insert(
        head, [{"lane": lane, "position": p, "hash": h} for lane, (p, h) in heads.items()]
    )
    with op.batch_alter_table("audit_events") as batch:
        for column, kind in (
            ("lane", sa.Integer),
            ("position", sa.BigInteger),
            ("body_sha256", sa.Text),
            ("chain_hash", sa.Text),
        ):
            batch.alter_column(column, existing_type=kind, nullable=False)
    op.create_index(
        "ix_audit_events_lane_position", "audit_events", ["lane", "position"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_lane_position", "audit_events")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_head")
    op.drop_index("ix_tokens_jti", "tokens")
    op.drop_index("ix_audit_events_user_id", "audit_events")
    # The old schema has no pruned bodies: keep the events and say what happened to them.
    op.get_bind().execute(
        sa.text("UPDATE audit_events SET data = :body WHERE data IS NULL"),
        {"body": '{"body_pruned":true}'},
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("data", existing_type=sa.Text, nullable=False)
        batch.drop_column("chain_hash")
        batch.drop_column("body_sha256")
        batch.drop_column("position")
        batch.drop_column("lane")

"""The audit log becomes a hash chain: each event gets the SHA-256 of its body and a link to
its predecessor; a one-row head holds the newest link; signed checkpoints are kept; bodies may
be pruned (``data`` NULL) once their retention ends.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from grantline.audit.chain import GENESIS, ChainEntry, body_digest, link

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("body_sha256", sa.Text))
        batch.add_column(sa.Column("chain_hash", sa.Text))
        batch.alter_column("data", existing_type=sa.Text, nullable=True)
    op.create_index("ix_audit_events_user_id", "audit_events", ["user_id"])
    op.create_index("ix_tokens_jti", "tokens", ["jti"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", _SEQ, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.Text, nullable=False),
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
    prev, last_seq = GENESIS, 0
    for row in rows:
        body = body_digest(row[7])
        entry = ChainEntry(row[0], row[1], row[2], row[3], row[4], row[5], row[6], body)
        prev = link(prev, entry)
        last_seq = row[0]
        conn.execute(
            sa.text("UPDATE audit_events SET body_sha256 = :b, chain_hash = :h WHERE seq = :s"),
            {"b": body, "h": prev, "s": row[0]},
        )
    op.bulk_insert(head, [{"id": 1, "seq": last_seq, "hash": prev}])
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("body_sha256", existing_type=sa.Text, nullable=False)
        batch.alter_column("chain_hash", existing_type=sa.Text, nullable=False)


def downgrade() -> None:
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

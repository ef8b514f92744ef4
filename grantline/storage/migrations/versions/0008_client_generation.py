"""A counter that every change to ``clients`` moves, by trigger: servers cache client records
and re-read them as soon as it has moved (RFC 9126 7.4), whoever changed the table.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SQLITE_EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    op.create_table(
        "client_generation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_client_generation_one_row"),
    )
    op.execute("INSERT INTO client_generation (id, value) VALUES (1, 0)")
    bump = "UPDATE client_generation SET value = value + 1 WHERE id = 1"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION grantline_bump_client_generation() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {bump}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            "ON clients FOR EACH STATEMENT EXECUTE FUNCTION grantline_bump_client_generation()"
        )
    else:
        for event in _SQLITE_EVENTS:
            op.execute(
                f"CREATE TRIGGER clients_changed_{event.lower()} AFTER {event} ON clients "
                f"BEGIN {bump}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER clients_changed ON clients")
        op.execute("DROP FUNCTION grantline_bump_client_generation()")
    else:
        for event in _SQLITE_EVENTS:
            op.execute(f"DROP TRIGGER clients_changed_{event.lower()}")
    op.drop_table("client_generation")

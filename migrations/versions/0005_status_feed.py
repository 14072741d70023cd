"""Gap-free order of the status change feed

Revision ID: 0005
Revises: 0004

Adds ``status_event.tx_id``, the id of the transaction that inserted the row, which the status
feed orders by. On PostgreSQL the column defaults to the inserting transaction's id, so writers
that insert events without naming the column still fill it; SQLite has a single writer and
assigns row ids in commit order, so a constant is enough there. See
``connectors.status.feed`` for why this ordering never skips an event.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_status_event_tx_id_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # xid8 has no cast to bigint; its text form is the 64-bit, wraparound-free value.
        default = sa.text("(pg_current_xact_id()::text)::bigint")
    else:
        default = sa.text("0")
    # Existing rows all get the migration's own transaction id, so among themselves they keep
    # their id order, and every later event sorts after them.
    op.add_column(
        "status_event",
        sa.Column("tx_id", sa.BigInteger(), server_default=default, nullable=False),
    )
    op.create_index(INDEX, "status_event", ["tx_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="status_event")
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.drop_column("tx_id")

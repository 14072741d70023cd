"""Rate-limit counters kept out of PostgreSQL's write-ahead log

Revision ID: 0007
Revises: 0006

Every data request adds to a counter before it is served. In a logged table that write, like
any commit, waits for the log to reach the disk: a second wait on the disk for each request,
after the audit record's. A counter of a one-minute window is worth no such wait: an unlogged
table commits without it, and loses its rows only in a crash (or on a standby), which gives
each client at most one more minute of quota. SQLite has no such tables; nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_limit_counter SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_limit_counter SET LOGGED")

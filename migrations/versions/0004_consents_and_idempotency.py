"""Consent ledger, idempotency records and habilitation field lists

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The consent ledger is evidence: grants and their events are never changed or removed.
LEDGER_TABLES = ("consent", "consent_subject", "consent_event")
_POSTGRESQL_FUNCTION = """
CREATE FUNCTION consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the consent ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _create_ledger_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL_FUNCTION)
        for table in LEDGER_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only()"
            )
        return
    for table in LEDGER_TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only: {action} "
                f"on {table} refused'); END"
            )


def _drop_ledger_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in LEDGER_TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION consent_ledger_append_only()")
        return
    for table in LEDGER_TABLES:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{action}")


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt_jws", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_consent_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(op.f("ix_consent_partner_id"), "consent", ["partner_id"])
    op.create_table(
        "consent_subject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_consent_subject_consent_id_consent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_subject")),
    )
    op.create_index(op.f("ix_consent_subject_consent_id"), "consent_subject", ["consent_id"])
    op.create_index("ix_consent_subject_pseudonym", "consent_subject", ["pseudonym"])
    op.create_table(
        "consent_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_consent_event_consent_id_consent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_event")),
    )
    op.create_index(op.f("ix_consent_event_consent_id"), "consent_event", ["consent_id"])
    op.create_table(
        "idempotency_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
        sa.UniqueConstraint(
            "client_id",
            "idempotency_key",
            name=op.f("uq_idempotency_record_client_id_idempotency_key"),
        ),
    )
    _create_ledger_triggers()
    with op.batch_alter_table("habilitation") as batch:
        batch.add_column(sa.Column("released_fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    _drop_ledger_triggers()
    with op.batch_alter_table("habilitation") as batch:
        batch.drop_column("released_fields")
    op.drop_table("idempotency_record")
    op.drop_index(op.f("ix_consent_event_consent_id"), table_name="consent_event")
    op.drop_table("consent_event")
    op.drop_index("ix_consent_subject_pseudonym", table_name="consent_subject")
    op.drop_index(op.f("ix_consent_subject_consent_id"), table_name="consent_subject")
    op.drop_table("consent_subject")
    op.drop_index(op.f("ix_consent_partner_id"), table_name="consent")
    op.drop_table("consent")
